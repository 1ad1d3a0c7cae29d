//! Server-side copies inside S3: between buckets of one copy domain
//! (replication) and within a bucket (promotion, conditioned on the hashed
//! version), in parts above the single-request limit.

use tooltool_ports::{BlobError, CopySource};

use crate::S3Store;
use crate::client::sdk_error;
use crate::write::{completed, part_number, part_size};

/// The smallest part of a server-side multipart copy (no memory involved:
/// fewer, larger requests).
pub(crate) const COPY_PART: u64 = 512 * 1024 * 1024;

impl S3Store {
    /// Copies `key` of `source`'s bucket to `key` here, inside S3.
    pub(crate) async fn copy(
        &self,
        source: &CopySource,
        key: &str,
        size: u64,
    ) -> Result<(), BlobError> {
        if source.domain != self.copy_domain {
            return Err(BlobError::OtherDomain(source.clone()));
        }
        // Keys and bucket names need no escaping: [a-z0-9/-] only.
        self.copy_within(&format!("{}/{key}", source.location), key, size, None)
            .await
    }

    /// Copies the object `from` (`bucket/key`, `size` bytes) to `key` in
    /// this bucket: one CopyObject up to the single-request limit,
    /// UploadPartCopy above it. With `if_match`, every request is
    /// conditioned on that version of the source, so a source replaced
    /// half way fails the copy with [`BlobError::Changed`] (S3's 412)
    /// instead of mixing two versions.
    pub(crate) async fn copy_within(
        &self,
        from: &str,
        key: &str,
        size: u64,
        if_match: Option<&str>,
    ) -> Result<(), BlobError> {
        if size <= self.single_max {
            self.client
                .copy_object()
                .bucket(&self.bucket)
                .key(key)
                .copy_source(from)
                .set_copy_source_if_match(if_match.map(str::to_owned))
                .send()
                .await
                .map_err(|e| sdk_error("copy object", &self.bucket, e))?;
            return Ok(());
        }
        let part = part_size(size, self.copy_part);
        self.multipart(key, |id| async move {
            let mut parts = Vec::new();
            let mut start = 0;
            while start < size {
                let end = (start + part).min(size) - 1;
                let number = part_number(parts.len())?;
                let copied = self
                    .client
                    .upload_part_copy()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&id)
                    .part_number(number)
                    .copy_source(from)
                    .copy_source_range(format!("bytes={start}-{end}"))
                    .set_copy_source_if_match(if_match.map(str::to_owned))
                    .send()
                    .await
                    .map_err(|e| sdk_error("upload part copy", &self.bucket, e))?;
                parts.push(completed(
                    number,
                    copied.copy_part_result().and_then(|r| r.e_tag()),
                ));
                start = end + 1;
            }
            Ok((parts, ()))
        })
        .await
    }
}
