//! The server's own signed URLs: `<public url>/blob/<region>/<key>?expires=…
//! [&size=…]&signature=…`, an HMAC-SHA256 over method, region, key, expiry
//! and (for uploads) the size, so a URL grants exactly one operation on one
//! object until it expires.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tooltool_domain::{ObjectKey, RegionName};
use tooltool_ports::SignedMethod;

type HmacSha256 = Hmac<Sha256>;

pub(crate) struct Signer {
    region: RegionName,
    /// `<public url>/blob/<region>/`, to which keys are appended.
    url_base: String,
    secret: Vec<u8>,
}

pub(crate) fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
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
    pub(crate) fn mac(
        &self,
        method: SignedMethod,
        key: &str,
        expires: i64,
        size: Option<u64>,
    ) -> HmacSha256 {
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
}
