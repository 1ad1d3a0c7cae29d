//! The MetadataStore contract: shared helpers here, the cases by concern
//! in `batches.rs`, `search.rs`, `uploads.rs`, `files.rs` and
//! `nonces.rs`.

use std::sync::Arc;

use chrono::Duration;
use tooltool_domain::{BatchError, DeclaredFile, Digest, PatchOp, RegionName, Visibility};

use super::{digest_of, staging, t0};
use crate::{MetadataError, MetadataStore, NewBatch};

type Store = Arc<dyn MetadataStore>;

mod batches;
mod files;
mod nonces;
mod search;
mod uploads;

pub use batches::*;
pub use files::*;
pub use nonces::*;
pub use search::*;
pub use uploads::*;

fn region(name: &str) -> RegionName {
    RegionName::parse(name).expect("valid region")
}

fn file(name: &str, content: &str, visibility: Visibility) -> DeclaredFile {
    DeclaredFile {
        filename: name.into(),
        digest: digest_of(content.as_bytes()),
        size: content.len() as u64,
        visibility,
    }
}

fn batch(message: &str, files: Vec<DeclaredFile>) -> NewBatch {
    let slots = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            staging(
                &f.digest,
                &format!("{message}{i}").replace(|c: char| !c.is_ascii_alphanumeric(), "x"),
            )
        })
        .collect();
    NewBatch {
        author: "alice".into(),
        message: message.into(),
        uploaded: t0(),
        files,
        slots,
        region: region("east"),
        slot_expires: t0() + Duration::seconds(60),
        max_size: 1 << 40,
    }
}

/// A batch of one public file, for tests outside this suite that need a
/// store write (e.g. on a full disk).
pub fn batch_of_one(message: &str, filename: &str, content: &str) -> NewBatch {
    batch(message, vec![file(filename, content, Visibility::Public)])
}

async fn upload_and_complete(
    store: &Store,
    name: &str,
    content: &str,
    visibility: Visibility,
) -> Digest {
    let created = store
        .create_batch(batch(
            &format!("upload {name}"),
            vec![file(name, content, visibility)],
        ))
        .await
        .expect("batch");
    let slot = &created.uploads[0];
    store
        .complete_upload(&slot.key, content.len() as u64)
        .await
        .expect("complete");
    slot.key.digest().clone()
}
