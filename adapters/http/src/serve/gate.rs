//! Who gets a connection: a cap on open connections in all and per peer
//! address, so that one peer's flood leaves room for everyone else and
//! the process never runs out of file descriptors (which would stop it
//! answering anyone); and the backoff of the accept loop when the system
//! refuses a new socket anyway.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Connection caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Open connections in all.
    pub total: usize,
    /// Open connections from one peer (see [`peer_of`]).
    pub per_peer: usize,
}

/// The peer a connection counts against: its IPv4 address (also when it
/// arrives IPv4-mapped on an IPv6 socket), or the /64 network of its IPv6
/// address, since one IPv6 host commonly holds a whole /64 and could
/// otherwise take a new address for every connection.
pub fn peer_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from_bits(
                v6.to_bits() & !((1u128 << 64) - 1),
            )),
        },
    }
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The server holds `Caps::total` connections.
    Full,
    /// This peer holds `Caps::per_peer` connections.
    PeerFull,
}

impl Refusal {
    /// The metric and log name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Full => "refused_full",
            Self::PeerFull => "refused_peer",
        }
    }
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_peer: HashMap<IpAddr, usize>,
}

/// The count of open connections, in all and by peer.
#[derive(Debug)]
pub struct Gate {
    caps: Caps,
    open: Mutex<Open>,
}

impl Gate {
    pub fn new(caps: Caps) -> Arc<Self> {
        Arc::new(Self {
            caps,
            open: Mutex::new(Open::default()),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Open) -> T) -> T {
        f(&mut self.open.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Admits a connection from `peer`, or says why not. The connection
    /// counts until the returned ticket is dropped.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refusal> {
        let peer = peer_of(ip);
        self.with(|open| {
            if open.total >= self.caps.total {
                return Err(Refusal::Full);
            }
            let mine = open.by_peer.entry(peer).or_insert(0);
            if *mine >= self.caps.per_peer {
                return Err(Refusal::PeerFull);
            }
            *mine += 1;
            open.total += 1;
            Ok(Ticket {
                gate: Arc::clone(self),
                peer,
            })
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.with(|open| open.total)
    }
}

/// One admitted connection (see [`Gate::admit`]).
#[derive(Debug)]
pub struct Ticket {
    gate: Arc<Gate>,
    peer: IpAddr,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.gate.with(|open| {
            open.total = open.total.saturating_sub(1);
            if let Some(mine) = open.by_peer.get_mut(&self.peer) {
                *mine -= 1;
                if *mine == 0 {
                    // The map holds peers with open connections only, so a
                    // scan of the address space cannot grow it.
                    open.by_peer.remove(&self.peer);
                }
            }
        });
    }
}

/// Pauses between failing `accept`s: 10 ms doubling to 1 s, back to the
/// start after a success. Every error pauses: the common ones (out of
/// descriptors or memory) cannot be fixed by retrying at once, which
/// would only spin a core, and a pause of 10 ms after a rare per-connection
/// error (a peer that reset before it was accepted) costs nothing.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    pub const FIRST: Duration = Duration::from_millis(10);
    pub const MOST: Duration = Duration::from_secs(1);

    /// The pause after one more failure.
    pub fn failed(&mut self) -> Duration {
        let pause = Self::FIRST
            .saturating_mul(1 << self.failures.min(16))
            .min(Self::MOST);
        self.failures = self.failures.saturating_add(1);
        pause
    }

    /// Failures since the last success (for the log), then reset.
    pub fn succeeded(&mut self) -> u32 {
        std::mem::take(&mut self.failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn caps_in_all_and_per_peer() {
        let gate = Gate::new(Caps {
            total: 3,
            per_peer: 2,
        });
        let a1 = gate.admit(ip(1)).expect("first");
        let a2 = gate.admit(ip(1)).expect("second");
        assert_eq!(gate.admit(ip(1)).expect_err("peer full"), Refusal::PeerFull);
        let b1 = gate.admit(ip(2)).expect("another peer");
        assert_eq!(gate.admit(ip(3)).expect_err("full"), Refusal::Full);
        assert_eq!(gate.open(), 3);
        drop(a1);
        let a3 = gate.admit(ip(1)).expect("room again");
        drop((a2, a3, b1));
        assert_eq!(gate.open(), 0);
        assert!(gate.with(|open| open.by_peer.is_empty()), "no peer kept");
    }

    #[test]
    fn peers_are_ipv4_addresses_and_ipv6_networks() {
        let v6 = |s: &str| s.parse::<IpAddr>().expect("address");
        let cases = [
            ("192.0.2.7", "192.0.2.7"),
            ("::ffff:192.0.2.7", "192.0.2.7"),
            ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::"),
            ("2001:db8:1:2::1", "2001:db8:1:2::"),
            ("2001:db8:1:3::1", "2001:db8:1:3::"),
            ("::1", "::"),
        ];
        for (ip, peer) in cases {
            assert_eq!(peer_of(v6(ip)), v6(peer), "{ip}");
        }
        let gate = Gate::new(Caps {
            total: 10,
            per_peer: 1,
        });
        let _one = gate.admit(v6("2001:db8::1")).expect("first");
        assert_eq!(
            gate.admit(v6("2001:db8::2"))
                .expect_err("same /64, same peer"),
            Refusal::PeerFull
        );
    }

    #[test]
    fn backoff_doubles_to_a_second_and_resets() {
        let mut backoff = Backoff::default();
        let pauses: Vec<u64> = (0..9)
            .map(|_| u64::try_from(backoff.failed().as_millis()).expect("small"))
            .collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        assert_eq!(backoff.succeeded(), 9);
        assert_eq!(backoff.failed(), Backoff::FIRST);
    }
}
