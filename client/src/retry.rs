//! Backoff between attempts: exponential with jitter, capped, or the
//! server's own `X-Retry-After` when it sent one (itself capped, so a
//! server cannot park a build job for hours).

use std::time::Duration;

/// How often and how long to retry.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The pause after the first failure; doubled after each.
    pub base: Duration,
    /// No pause is longer (the server's included).
    pub max: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 5,
            base: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

/// The attempts made so far at one thing.
#[derive(Debug, Default)]
pub struct Attempt {
    failures: u32,
}

impl Attempt {
    /// After a failure: the pause before the next attempt, or `None` when
    /// none is left. `after` is what the server asked for.
    pub fn next(&mut self, retry: &Retry, after: Option<Duration>) -> Option<Duration> {
        self.failures += 1;
        if self.failures >= retry.attempts {
            return None;
        }
        let backoff = retry.base.saturating_mul(1 << (self.failures - 1).min(16));
        // Up to a quarter more, so that many clients failing together do
        // not come back together.
        let jitter = backoff.mul_f64(f64::from(jitter_permille()) / 4000.0);
        Some(after.unwrap_or(backoff + jitter).min(retry.max))
    }
}

/// The delay a server asked for in `X-Retry-After` (whole seconds), the
/// protocol's header on 409 and 503 answers.
pub fn server_delay(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get("x-retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// 0..1000 from the clock: spreading retries needs no strong randomness.
fn jitter_permille() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_are_capped_and_end() {
        let retry = Retry {
            attempts: 4,
            base: Duration::from_millis(100),
            max: Duration::from_millis(300),
        };
        let mut a = Attempt::default();
        let first = a.next(&retry, None).expect("a second attempt");
        assert!((100..=125).contains(&first.as_millis()), "{first:?}");
        let second = a.next(&retry, None).expect("a third attempt");
        assert!((200..=250).contains(&second.as_millis()), "{second:?}");
        assert_eq!(
            a.next(&retry, None),
            Some(Duration::from_millis(300)),
            "capped"
        );
        assert_eq!(a.next(&retry, None), None, "four attempts in all");
    }

    #[test]
    fn the_servers_delay_is_honoured_within_the_cap() {
        let retry = Retry {
            attempts: 3,
            base: Duration::from_millis(100),
            max: Duration::from_secs(5),
        };
        let mut a = Attempt::default();
        assert_eq!(
            a.next(&retry, Some(Duration::from_secs(2))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            a.next(&retry, Some(Duration::from_secs(3600))),
            Some(Duration::from_secs(5)),
            "capped"
        );
        assert_eq!(a.next(&retry, None), None, "three attempts in all");
        let mut b = Attempt::default();
        assert_eq!(
            b.next(&retry, Some(Duration::from_secs(3600))),
            Some(Duration::from_secs(5))
        );
    }
}
