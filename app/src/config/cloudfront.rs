//! CloudFront downloads (`CLOUDFRONT_URL`, `CLOUDFRONT_KEY_ID`,
//! `CLOUDFRONT_PRIVATE_KEY`, read by the storage group): all three or none,
//! the host alone, the key read at wiring.

use super::storage::StorageArgs;
use super::{ConfigError, Secret, err};

/// A CloudFront distribution that serves downloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudFront {
    /// `host[:port]`.
    pub host: String,
    pub key_id: String,
    /// A path to a PEM file, or the PEM text (read at wiring).
    pub private_key: Secret,
}

impl StorageArgs {
    /// The three CloudFront variables: all or none, the host a bare
    /// `host[:port]` (the URL is always https).
    pub(super) fn cloudfront(&self) -> Result<Option<CloudFront>, ConfigError> {
        fn given(v: &Option<String>) -> Option<&str> {
            v.as_deref().map(str::trim).filter(|t| !t.is_empty())
        }
        let key = self
            .cloudfront_private_key
            .as_ref()
            .filter(|k| !k.0.trim().is_empty());
        let (host, id, key) = match (
            given(&self.cloudfront_url),
            given(&self.cloudfront_key_id),
            key,
        ) {
            (None, None, None) => return Ok(None),
            (Some(host), Some(id), Some(key)) => (host, id, key),
            (None, _, _) => {
                return Err(err(
                    "CLOUDFRONT_URL",
                    "is required with CLOUDFRONT_KEY_ID and CLOUDFRONT_PRIVATE_KEY",
                ));
            }
            (Some(_), None, _) => {
                return Err(err("CLOUDFRONT_KEY_ID", "is required with CLOUDFRONT_URL"));
            }
            (Some(_), Some(_), None) => {
                return Err(err(
                    "CLOUDFRONT_PRIVATE_KEY",
                    "is required with CLOUDFRONT_URL",
                ));
            }
        };
        if host.contains("://") || host.contains('/') {
            return Err(err(
                "CLOUDFRONT_URL",
                format!(
                    "{host:?} must be the distribution's host name alone, without scheme or path (e.g. d111111abcdef8.cloudfront.net)"
                ),
            ));
        }
        let (name, port) = host
            .rsplit_once(':')
            .map_or((host, None), |(h, p)| (h, Some(p)));
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !name_ok || port.is_some_and(|p| p.parse::<u16>().is_err()) {
            return Err(err(
                "CLOUDFRONT_URL",
                format!("{host:?} is not a host name"),
            ));
        }
        if !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(err(
                "CLOUDFRONT_KEY_ID",
                format!("{id:?} is not a key id (letters and digits, e.g. K2JCJMDEHXQW5F)"),
            ));
        }
        Ok(Some(CloudFront {
            host: host.to_ascii_lowercase(),
            key_id: id.to_owned(),
            private_key: key.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::config;
    use super::*;

    #[test]
    fn cloudfront_settings_come_all_three_together_and_name_what_is_wrong() {
        let all = |host: &str| {
            config(&[
                "--cloudfront-url",
                host,
                "--cloudfront-key-id",
                "K2JCJMDEHXQW5F",
                "--cloudfront-private-key",
                "/etc/cf.pem",
            ])
            .resolve()
        };
        let r = all("D1.cloudfront.net").expect("valid");
        assert_eq!(
            r.storage.cloudfront,
            Some(CloudFront {
                host: "d1.cloudfront.net".into(),
                key_id: "K2JCJMDEHXQW5F".into(),
                private_key: Secret("/etc/cf.pem".into()),
            })
        );
        assert_eq!(
            config(&[]).resolve().expect("valid").storage.cloudfront,
            None
        );
        for (host, variable) in [
            ("https://d1.cloudfront.net", "CLOUDFRONT_URL"),
            ("d1.cloudfront.net/sha512", "CLOUDFRONT_URL"),
            ("d1 cloudfront.net", "CLOUDFRONT_URL"),
            ("d1.cloudfront.net:https", "CLOUDFRONT_URL"),
        ] {
            let e = all(host).expect_err(host).to_string();
            assert!(e.starts_with(variable), "{host}: {e}");
        }
        for (args, variable) in [
            (
                &["--cloudfront-url", "d1.cloudfront.net"][..],
                "CLOUDFRONT_KEY_ID",
            ),
            (
                &[
                    "--cloudfront-url",
                    "d1.cloudfront.net",
                    "--cloudfront-key-id",
                    "K1",
                ][..],
                "CLOUDFRONT_PRIVATE_KEY",
            ),
            (&["--cloudfront-key-id", "K1"][..], "CLOUDFRONT_URL"),
            (
                &[
                    "--cloudfront-url",
                    "d1.net",
                    "--cloudfront-key-id",
                    "K 1",
                    "--cloudfront-private-key",
                    "k",
                ][..],
                "CLOUDFRONT_KEY_ID",
            ),
        ] {
            let e = config(args).resolve().expect_err("refused").to_string();
            assert!(e.starts_with(variable), "{args:?}: {e}");
        }
    }
}
