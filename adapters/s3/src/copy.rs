//! Server-side copies between buckets of one copy domain (replication),
//! in parts above S3's single-request limit.

use tooltool_ports::{BlobError, CopySource};

use crate::S3Store;
use crate::client::sdk_error;
use crate::write::{completed, part_number, part_size};

/// The smallest part of a server-side multipart copy (no memory involved:
/// fewer, larger requests).
pub(crate) const COPY_PART: u64 = 512 * 1024 * 1024;

impl S3Store {
    /// Copies `key` of `source`'s bucket to `key` here, inside S3: one
    /// CopyObject up to the single-request limit, UploadPartCopy above it.
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
        let from = format!("{}/{key}", source.location);
        if size <= self.single_max {
            self.client
                .copy_object()
                .bucket(&self.bucket)
                .key(key)
                .copy_source(&from)
                .send()
                .await
                .map_err(|e| sdk_error("copy object", &self.bucket, e))?;
            return Ok(());
        }
        let part = part_size(size, self.copy_part);
        let from = &from;
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
                    .send()
                    .await
                    .map_err(|e| sdk_error("upload part copy", &self.bucket, e))?;
                parts.push(completed(
                    number,
                    copied.copy_part_result().and_then(|r| r.e_tag()),
                ));
                start = end + 1;
            }
            Ok(parts)
        })
        .await
    }
}
