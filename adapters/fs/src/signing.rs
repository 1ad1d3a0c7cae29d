//! The server's own signed URLs: `<public url>/blob/<region>/<key>?expires=…
//! [&size=…]&signature=…`, an HMAC-SHA256 over method, region, key, expiry
//! and (for uploads) the size, so a URL grants exactly one operation on one
//! object until it expires.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tooltool_domain::{ObjectKey, RegionName};
use tooltool_ports::{BlobError, SignedMethod};

type HmacSha256 = Hmac<Sha256>;

pub(crate) struct Signer {
    region: RegionName,
    /// `<public url>/blob/<region>/`, to which keys are appended.
    url_base: String,
    secret: Vec<u8>,
}

fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl Signer {
    pub(crate) fn new(region: &RegionName, public_url: &str, secret: &[u8]) -> Self {
        Self {
            region: region.clone(),
            url_base: format!("{}/blob/{}/", public_url.trim_end_matches('/'), region),
            secret: secret.to_vec(),
        }
    }

    /// The MAC of a URL for `key` as its text appears in the URL.
    fn mac(&self, method: SignedMethod, key: &str, expires: i64, size: Option<u64>) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key length");
        let method = match method {
            SignedMethod::Get => "GET",
            SignedMethod::Put => "PUT",
        };
        let size = size.map(|s| s.to_string()).unwrap_or_default();
        mac.update(format!("{method}\n{}\n{key}\n{expires}\n{size}", self.region).as_bytes());
        mac
    }

    pub(crate) fn sign(
        &self,
        method: SignedMethod,
        key: &ObjectKey,
        expires: DateTime<Utc>,
        size: Option<u64>,
    ) -> String {
        let key = key.to_string();
        let expires = expires.timestamp();
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

    /// Checks a URL's signature and expiry over the key text it names, then
    /// parses that text: only keys this store signed get past the MAC, so
    /// an unparsable key is as forbidden as an altered one.
    pub(crate) fn authorize(
        &self,
        method: SignedMethod,
        key: &str,
        query: &str,
        now: DateTime<Utc>,
    ) -> Result<ObjectKey, BlobError> {
        let forbidden = |why: &str| Err(BlobError::Forbidden(why.to_owned()));
        let (Some(expires), Some(signature)) = (
            query_param(query, "expires").and_then(|e| e.parse::<i64>().ok()),
            query_param(query, "signature").and_then(|s| hex::decode(s).ok()),
        ) else {
            return forbidden("this URL is not signed: request a new one from the server");
        };
        let size = match method {
            SignedMethod::Put => match query_param(query, "size").and_then(|s| s.parse().ok()) {
                Some(size) => Some(size),
                None => return forbidden("this upload URL has no size: request a new one"),
            },
            SignedMethod::Get => None,
        };
        if self
            .mac(method, key, expires, size)
            .verify_slice(&signature)
            .is_err()
        {
            return forbidden(
                "the URL signature does not match: it was altered or is for another object",
            );
        }
        if now.timestamp() > expires {
            return forbidden("this signed URL has expired: request a new one from the server");
        }
        match (method, ObjectKey::parse(key)) {
            (SignedMethod::Put, Some(key @ ObjectKey::Staging(_)))
            | (SignedMethod::Get, Some(key @ ObjectKey::File(_))) => Ok(key),
            _ => forbidden("this URL does not name an object of this server"),
        }
    }
}
