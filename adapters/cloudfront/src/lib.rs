//! Downloads through a CloudFront distribution: a decorator of any
//! [`BlobStore`] whose `presign_get` answers a CloudFront URL signed with a
//! canned policy (`sign.rs`) instead of the store's own signed URL. Chosen
//! at wiring time (`CLOUDFRONT_URL`), so the use cases do not know which
//! signer they talk to; everything else goes to the wrapped store.
//!
//! The distribution serves `https://<host>/sha512/<digest>` from the
//! store's objects of the same key (its origin is a bucket, or an origin
//! group of the region buckets).

mod sign;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tooltool_domain::{Digest, ObjectKey, RegionName, StagingKey};
use tooltool_ports::{
    BlobError, BlobStore, ByteStream, CopySource, ObjectInfo, Receiving, Serving,
};

pub use sign::{KeyError, KeyPair};

/// A distribution and the key pair its signed URLs are checked against.
#[derive(Debug)]
pub struct Distribution {
    /// `host[:port]`, no scheme, no path.
    host: String,
    keys: KeyPair,
}

impl Distribution {
    pub fn new(host: &str, keys: KeyPair) -> Self {
        Self {
            host: host.to_owned(),
            keys,
        }
    }

    /// The signed URL of the verified file `digest`, valid until `expires`.
    pub fn url(&self, digest: &Digest, expires: DateTime<Utc>) -> String {
        let resource = format!("https://{}/{}", self.host, ObjectKey::File(digest.clone()));
        self.keys.sign(&resource, expires.timestamp())
    }
}

/// `store` with its downloads signed for `distribution`.
pub struct CloudFront {
    store: Arc<dyn BlobStore>,
    distribution: Arc<Distribution>,
}

impl CloudFront {
    pub fn new(store: Arc<dyn BlobStore>, distribution: Arc<Distribution>) -> Self {
        Self {
            store,
            distribution,
        }
    }
}

#[async_trait]
impl BlobStore for CloudFront {
    fn region(&self) -> &RegionName {
        self.store.region()
    }

    fn low_on_space(&self) -> Option<String> {
        self.store.low_on_space()
    }

    async fn presign_put(
        &self,
        key: &StagingKey,
        size: u64,
        expires: DateTime<Utc>,
    ) -> Result<String, BlobError> {
        self.store.presign_put(key, size, expires).await
    }

    /// The CloudFront URL; the use case has already checked that this
    /// region holds a verified copy.
    async fn presign_get(
        &self,
        digest: &Digest,
        expires: DateTime<Utc>,
    ) -> Result<String, BlobError> {
        Ok(self.distribution.url(digest, expires))
    }

    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>, BlobError> {
        self.store.head(key).await
    }

    async fn get(&self, key: &ObjectKey) -> Result<ByteStream, BlobError> {
        self.store.get(key).await
    }

    async fn promote(&self, staging: &StagingKey, inspected: &ObjectInfo) -> Result<(), BlobError> {
        self.store.promote(staging, inspected).await
    }

    async fn put(&self, key: &ObjectKey, size: u64, body: ByteStream) -> Result<(), BlobError> {
        self.store.put(key, size, body).await
    }

    fn copy_source(&self) -> Option<CopySource> {
        self.store.copy_source()
    }

    async fn copy_from(
        &self,
        source: &CopySource,
        digest: &Digest,
        size: u64,
    ) -> Result<(), BlobError> {
        self.store.copy_from(source, digest, size).await
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), BlobError> {
        self.store.delete(key).await
    }

    async fn list_staging(&self, before: DateTime<Utc>) -> Result<Vec<StagingKey>, BlobError> {
        self.store.list_staging(before).await
    }

    fn receiving(&self) -> Option<Arc<dyn Receiving>> {
        self.store.receiving()
    }

    fn serving(&self) -> Option<Arc<dyn Serving>> {
        self.store.serving()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tooltool_ports::MockBlobStore;

    fn digest() -> Digest {
        Digest::parse(&"ab".repeat(64)).expect("digest")
    }

    /// Downloads are CloudFront's; everything else reaches the store.
    #[tokio::test]
    async fn downloads_are_signed_for_the_distribution_and_the_rest_is_the_stores() {
        let mut store = MockBlobStore::new();
        store.expect_presign_get().never();
        store
            .expect_presign_put()
            .returning(|k, _, _| Ok(format!("https://bucket/{k}")));
        store.expect_head().returning(|_| Ok(None));
        let keys =
            KeyPair::from_pem("KID", include_bytes!("../testdata/rsa-2048.pem")).expect("key");
        let cdn = CloudFront::new(
            Arc::new(store),
            Arc::new(Distribution::new("d1.cloudfront.net", keys)),
        );
        let expires = DateTime::from_timestamp(1_800_000_060, 0).expect("time");
        let url = cdn.presign_get(&digest(), expires).await.expect("signed");
        let prefix = format!(
            "https://d1.cloudfront.net/sha512/{}?Expires=1800000060&Signature=",
            digest()
        );
        assert!(url.starts_with(&prefix), "{url}");
        assert!(url.ends_with("&Key-Pair-Id=KID"), "{url}");
        let staging = StagingKey::new(digest(), "0011223344556677").expect("key");
        assert_eq!(
            cdn.presign_put(&staging, 1, expires).await.expect("put"),
            format!("https://bucket/{staging}")
        );
        assert_eq!(cdn.head(&staging.into()).await.expect("head"), None);
    }
}
