//! The server's own signed storage URLs: `<public url>/blob/<region>/<key>
//! ?expires=…[&size=…]&signature=…`, an HMAC-SHA256 over method, region,
//! key, expiry and (for uploads) the size, so a URL grants exactly one
//! operation on one object until it expires. Every store whose transfers
//! pass through this server signs and checks with [`UrlSigner`]: local
//! directories for everything, S3 for uploads above its single-PUT limit.
//!
//! Pure: the caller passes the time (UNIX seconds).

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{Digest, ObjectKey, RegionName, StagingKey};

type HmacSha256 = Hmac<Sha256>;

/// Which operation a signed URL grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignedMethod {
    Get,
    Put,
}

impl SignedMethod {
    fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Put => "PUT",
        }
    }
}

/// Why a request's URL grants nothing; the text is for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlRefusal {
    NotSigned,
    NoSize,
    BadSignature,
    Expired,
    NamesNothing,
}

impl fmt::Display for UrlRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotSigned => "this URL is not signed: request a new one from the server",
            Self::NoSize => "this upload URL has no size: request a new one",
            Self::BadSignature => {
                "the URL signature does not match: it was altered or is for another object"
            }
            Self::Expired => "this signed URL has expired: request a new one from the server",
            Self::NamesNothing => "this URL does not name an object of this server",
        })
    }
}

impl std::error::Error for UrlRefusal {}

/// Signs and checks one region's URLs with the server's secret.
pub struct UrlSigner {
    region: RegionName,
    /// `<public url>/blob/<region>/`, to which keys are appended.
    url_base: String,
    secret: Vec<u8>,
}

impl fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UrlSigner")
            .field("url_base", &self.url_base)
            .finish_non_exhaustive()
    }
}

/// The value of `name` in a query string (no decoding: every value we
/// sign is plain digits or hex).
fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl UrlSigner {
    pub fn new(region: &RegionName, public_url: &str, secret: &[u8]) -> Self {
        Self {
            region: region.clone(),
            url_base: format!("{}/blob/{}/", public_url.trim_end_matches('/'), region),
            secret: secret.to_vec(),
        }
    }

    /// The MAC of a URL for `key` as its text appears in the URL.
    fn mac(&self, method: SignedMethod, key: &str, expires: i64, size: Option<u64>) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key length");
        let size = size.map(|s| s.to_string()).unwrap_or_default();
        mac.update(
            format!(
                "{}\n{}\n{key}\n{expires}\n{size}",
                method.as_str(),
                self.region
            )
            .as_bytes(),
        );
        mac
    }

    fn sign(
        &self,
        method: SignedMethod,
        key: &ObjectKey,
        expires: i64,
        size: Option<u64>,
    ) -> String {
        let key = key.to_string();
        let signature = hex::encode(
            self.mac(method, &key, expires, size)
                .finalize()
                .into_bytes(),
        );
        match size {
            Some(size) => format!(
                "{}{key}?expires={expires}&size={size}&signature={signature}",
                self.url_base
            ),
            None => format!(
                "{}{key}?expires={expires}&signature={signature}",
                self.url_base
            ),
        }
    }

    /// A URL that lets anyone PUT exactly `size` bytes into the slot `key`
    /// until `expires`.
    pub fn sign_put(&self, key: &StagingKey, size: u64, expires: i64) -> String {
        self.sign(SignedMethod::Put, &key.clone().into(), expires, Some(size))
    }

    /// A URL that lets anyone GET the verified file `digest` until `expires`.
    pub fn sign_get(&self, digest: &Digest, expires: i64) -> String {
        self.sign(
            SignedMethod::Get,
            &ObjectKey::File(digest.clone()),
            expires,
            None,
        )
    }

    /// Checks a URL's signature and expiry over the key text it names (the
    /// path after `/blob/<region>/`), then parses that text: only keys this
    /// signer signed get past the MAC, so an unparsable key is refused like
    /// an altered one.
    fn check(
        &self,
        method: SignedMethod,
        key: &str,
        query: &str,
        now: i64,
    ) -> Result<ObjectKey, UrlRefusal> {
        let (Some(expires), Some(signature)) = (
            query_param(query, "expires").and_then(|e| e.parse::<i64>().ok()),
            query_param(query, "signature").and_then(|s| hex::decode(s).ok()),
        ) else {
            return Err(UrlRefusal::NotSigned);
        };
        let size = match method {
            SignedMethod::Put => Some(
                query_param(query, "size")
                    .and_then(|s| s.parse().ok())
                    .ok_or(UrlRefusal::NoSize)?,
            ),
            SignedMethod::Get => None,
        };
        self.mac(method, key, expires, size)
            .verify_slice(&signature)
            .map_err(|_| UrlRefusal::BadSignature)?;
        if now > expires {
            return Err(UrlRefusal::Expired);
        }
        ObjectKey::parse(key).ok_or(UrlRefusal::NamesNothing)
    }

    /// The slot a PUT of `key` with `query` may write at `now`.
    ///
    /// # Errors
    /// The URL was not signed by this signer for a PUT of that slot, or
    /// has expired.
    pub fn check_put(&self, key: &str, query: &str, now: i64) -> Result<StagingKey, UrlRefusal> {
        match self.check(SignedMethod::Put, key, query, now)? {
            ObjectKey::Staging(slot) => Ok(slot),
            ObjectKey::File(_) => Err(UrlRefusal::NamesNothing),
        }
    }

    /// The verified file a GET of `key` with `query` may read at `now`.
    ///
    /// # Errors
    /// The URL was not signed by this signer for a GET of that file, or
    /// has expired.
    pub fn check_get(&self, key: &str, query: &str, now: i64) -> Result<Digest, UrlRefusal> {
        match self.check(SignedMethod::Get, key, query, now)? {
            ObjectKey::File(digest) => Ok(digest),
            ObjectKey::Staging(_) => Err(UrlRefusal::NamesNothing),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(region: &str, secret: &[u8]) -> UrlSigner {
        UrlSigner::new(
            &RegionName::parse(region).expect("valid"),
            "https://tooltool.example/",
            secret,
        )
    }

    /// The path after `/blob/<region>/` and the query of a signed URL.
    fn split(url: &str) -> (String, String) {
        let (path, query) = url.split_once('?').expect("query");
        let key = path
            .split_once("/blob/east/")
            .expect("blob route")
            .1
            .to_owned();
        (key, query.to_owned())
    }

    #[test]
    fn urls_grant_exactly_what_they_say() {
        let s = signer("east", b"a secret of the server");
        let digest = Digest::parse(&"ab".repeat(64)).expect("digest");
        let slot = StagingKey::new(digest.clone(), "0123456789abcdef").expect("slot");
        let put = s.sign_put(&slot, 6, 1000);
        assert!(put.starts_with("https://tooltool.example/blob/east/pending/"));
        let (key, q) = split(&put);
        assert_eq!(s.check_put(&key, &q, 1000), Ok(slot.clone()));
        let get = s.sign_get(&digest, 1000);
        let (gkey, gq) = split(&get);
        assert_eq!(s.check_get(&gkey, &gq, 999), Ok(digest.clone()));
        let file = format!("sha512/{digest}");
        let other = signer("west", b"a secret of the server");
        let rekeyed = signer("east", b"another secret");
        for (what, got, refusal) in [
            ("expired", s.check_put(&key, &q, 1001), UrlRefusal::Expired),
            (
                "a GET URL used for a PUT",
                s.check_put(&gkey, &gq, 0),
                UrlRefusal::NoSize,
            ),
            (
                "another key",
                s.check_put(&file, &q, 0),
                UrlRefusal::BadSignature,
            ),
            (
                "another size",
                s.check_put(&key, &q.replace("size=6", "size=7"), 0),
                UrlRefusal::BadSignature,
            ),
            (
                "another expiry",
                s.check_put(&key, &q.replace("expires=", "expires=9"), 0),
                UrlRefusal::BadSignature,
            ),
            ("no query", s.check_put(&key, "", 0), UrlRefusal::NotSigned),
            (
                "not hex",
                s.check_put(
                    &key,
                    &format!("{q}x").replace("signature=", "signature=zz"),
                    0,
                ),
                UrlRefusal::NotSigned,
            ),
            (
                "another region",
                other.check_put(&key, &q, 0),
                UrlRefusal::BadSignature,
            ),
            (
                "another secret",
                rekeyed.check_put(&key, &q, 0),
                UrlRefusal::BadSignature,
            ),
            (
                "a path beyond the key",
                s.check_put(&format!("{key}/x"), &q, 0),
                UrlRefusal::BadSignature,
            ),
        ] {
            assert_eq!(got, Err(refusal), "{what}");
        }
        assert_eq!(
            s.check_get(&key, &q, 0),
            Err(UrlRefusal::BadSignature),
            "a PUT URL used for a GET"
        );
        assert_eq!(s.check_get(&gkey, &gq, 1001), Err(UrlRefusal::Expired));
    }

    #[test]
    fn a_signed_key_of_the_wrong_kind_names_nothing() {
        let s = signer("east", b"secret");
        let digest = Digest::parse(&"cd".repeat(64)).expect("digest");
        // A GET URL signed (by mistake) for a staging key, and the reverse.
        let slot = StagingKey::new(digest.clone(), "0123456789abcdef").expect("slot");
        let get = s.sign(SignedMethod::Get, &slot.clone().into(), 10, None);
        let (key, q) = split(&get);
        assert_eq!(s.check_get(&key, &q, 0), Err(UrlRefusal::NamesNothing));
        let put = s.sign(SignedMethod::Put, &ObjectKey::File(digest), 10, Some(1));
        let (key, q) = split(&put);
        assert_eq!(s.check_put(&key, &q, 0), Err(UrlRefusal::NamesNothing));
    }
}
