//! The one check every URL setting gets (PUBLIC_URL, S3_ENDPOINT,
//! TASKCLUSTER_ROOT_URL, CORS_ORIGINS).

use super::{ConfigError, err};

/// An http(s) URL, as given and without its trailing slashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct HttpUrl<'a> {
    /// The URL without trailing slashes.
    pub text: &'a str,
    pub https: bool,
    /// `host[:port]`.
    pub authority: &'a str,
}

impl HttpUrl<'_> {
    /// Whether the authority names a port (IPv6 literals in brackets).
    pub fn has_port(&self) -> bool {
        self.authority.rsplit_once(':').is_some_and(|(host, port)| {
            !port.contains(']') && !host.is_empty() && port.parse::<u16>().is_ok()
        })
    }
}

/// `text` as an http(s) URL with a host, or an error naming `variable`.
pub(super) fn http_url<'a>(
    variable: &'static str,
    text: &'a str,
) -> Result<HttpUrl<'a>, ConfigError> {
    let trimmed = text.trim().trim_end_matches('/');
    let (https, rest) = match (
        trimmed.strip_prefix("https://"),
        trimmed.strip_prefix("http://"),
    ) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => {
            return Err(err(
                variable,
                format!("{text:?} is not an http(s) URL (it must start with http:// or https://)"),
            ));
        }
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(err(variable, format!("{text:?} names no host")));
    }
    Ok(HttpUrl {
        text: trimmed,
        https,
        authority,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_table() {
        for (text, ok, https, port) in [
            ("https://tooltool.example.com/", true, true, false),
            ("http://127.0.0.1:8000", true, false, true),
            ("http://[::1]:8080/base", true, false, true),
            ("http://[::1]", true, false, false),
            ("ftp://x", false, false, false),
            ("tc.example.com", false, false, false),
            ("https://", false, false, false),
            ("minio:9000", false, false, false),
        ] {
            let got = http_url("X", text);
            assert_eq!(got.is_ok(), ok, "{text}");
            if let Ok(url) = got {
                assert_eq!((url.https, url.has_port()), (https, port), "{text}");
                assert!(!url.text.ends_with('/'), "{text}");
            }
        }
    }
}
