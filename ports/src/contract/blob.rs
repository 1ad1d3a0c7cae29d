//! The BlobStore contract: what every store does (the transfers a store
//! sends through this server are in `transfers.rs`).

use std::sync::Arc;

use bytes::Bytes;
use chrono::{Duration, Utc};
use futures_util::StreamExt;
use tooltool_domain::{Digest, ObjectKey, StagingKey};

use super::{digest_of, staging};
use crate::{BlobError, BlobStore, ByteStream};

pub(super) type Store = Arc<dyn BlobStore>;

/// The key of the verified file `digest`.
pub(super) fn file_key(digest: &Digest) -> ObjectKey {
    ObjectKey::File(digest.clone())
}

pub(super) fn stream_of(bytes: &[u8], chunk: usize) -> ByteStream {
    let chunks: Vec<Result<Bytes, BlobError>> = bytes
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures_util::stream::iter(chunks))
}

pub(super) async fn collect(mut s: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk.expect("chunk"));
    }
    out
}

pub(super) fn query_of(url: &str) -> &str {
    url.split_once('?').map(|(_, q)| q).unwrap_or_default()
}

pub(super) fn key_of(url: &str) -> String {
    // .../blob/<region>/<key>?...
    let path = url.split('?').next().unwrap_or_default();
    let after = path.split("/blob/").nth(1).unwrap_or_default();
    after
        .split_once('/')
        .map(|(_, k)| k.to_owned())
        .unwrap_or_default()
}

pub async fn copy_from_copies_between_stores_of_one_domain(a: Store, b: Store) {
    let source = a
        .copy_source()
        .expect("the source offers server-side copies");
    assert_eq!(
        b.copy_source().map(|s| s.domain),
        Some(source.domain.clone()),
        "the pair shares a copy domain"
    );
    let content = b"copied without passing through the server";
    let size = content.len() as u64;
    let digest = digest_of(content);
    let key = file_key(&digest);
    assert!(matches!(
        b.copy_from(&source, &digest, size).await,
        Err(BlobError::NotFound)
    ));
    assert_eq!(
        b.head(&key).await.expect("head"),
        None,
        "nothing of a failed copy"
    );
    a.put(&key, size, stream_of(content, 7)).await.expect("put");
    b.copy_from(&source, &digest, size).await.expect("copy");
    assert_eq!(collect(b.get(&key).await.expect("get")).await, content);
    assert_eq!(
        collect(a.get(&key).await.expect("get")).await,
        content,
        "the source stays"
    );
    // Replication may copy again onto an existing object.
    b.copy_from(&source, &digest, size)
        .await
        .expect("copy again");
    assert_eq!(
        b.head(&key).await.expect("head").expect("exists").size,
        size
    );
    // A source of another domain is refused, so the caller streams instead.
    let foreign = crate::CopySource {
        domain: format!("not {}", source.domain),
        location: source.location.clone(),
    };
    assert!(matches!(
        b.copy_from(&foreign, &digest, size).await,
        Err(BlobError::OtherDomain(_))
    ));
}

pub async fn put_head_get_delete_round_trip(store: Store) {
    let content = b"round trip";
    let key = file_key(&digest_of(content));
    assert_eq!(store.head(&key).await.expect("head"), None);
    assert!(matches!(store.get(&key).await, Err(BlobError::NotFound)));
    store
        .put(&key, content.len() as u64, stream_of(content, 3))
        .await
        .expect("put");
    let info = store.head(&key).await.expect("head").expect("exists");
    assert_eq!(info.size, content.len() as u64);
    assert!(!info.etag.is_empty());
    assert_eq!(collect(store.get(&key).await.expect("get")).await, content);
    store.delete(&key).await.expect("delete");
    assert_eq!(store.head(&key).await.expect("head"), None);
    store
        .delete(&key)
        .await
        .expect("deleting a missing object is fine");
    // Empty files exist too.
    let empty = file_key(&digest_of(b""));
    store
        .put(&empty, 0, stream_of(b"", 1))
        .await
        .expect("put empty");
    assert_eq!(
        store
            .head(&empty)
            .await
            .expect("head")
            .expect("exists")
            .size,
        0
    );
    assert_eq!(collect(store.get(&empty).await.expect("get")).await, b"");
    // A put of the wrong length leaves nothing visible.
    let short = file_key(&digest_of(b"short"));
    assert!(
        store
            .put(&short, 100, stream_of(b"short", 2))
            .await
            .is_err()
    );
    assert_eq!(store.head(&short).await.expect("head"), None);
}

/// Writes a staging object the way small uploads arrive: received through
/// this server when the store receives every upload (a local directory),
/// else put (as a client's PUT to a presigned URL would).
async fn write_staging(store: &Store, key: &StagingKey, content: &[u8]) {
    let size = content.len() as u64;
    match store.serving().and(store.receiving()) {
        Some(receiving) => {
            receiving
                .receive(key, size, stream_of(content, 4))
                .await
                .expect("receive staging");
        }
        None => store
            .put(&key.clone().into(), size, stream_of(content, 4))
            .await
            .expect("put staging"),
    }
}

pub(super) fn staging_key(key: &StagingKey) -> ObjectKey {
    key.clone().into()
}

pub async fn promote_moves_only_the_inspected_version(store: Store) {
    let content = b"promote me";
    let d = digest_of(content);
    let key = staging(&d, "p1");
    write_staging(&store, &key, content).await;
    let inspected = store
        .head(&staging_key(&key))
        .await
        .expect("head")
        .expect("exists");
    // Swap the bytes after inspection: promotion must refuse.
    write_staging(&store, &key, b"swapped!!!").await;
    assert!(matches!(
        store.promote(&key, &inspected).await,
        Err(BlobError::Changed)
    ));
    assert_eq!(store.head(&file_key(&d)).await.expect("head"), None);
    let current = store
        .head(&staging_key(&key))
        .await
        .expect("head")
        .expect("exists");
    store.promote(&key, &current).await.expect("promote");
    assert_eq!(
        store.head(&staging_key(&key)).await.expect("head"),
        None,
        "staging gone"
    );
    assert_eq!(
        collect(store.get(&file_key(&d)).await.expect("get")).await,
        b"swapped!!!"
    );
    // Promoting onto an existing final object is allowed.
    let key2 = staging(&d, "p2");
    write_staging(&store, &key2, b"swapped!!!").await;
    let info = store
        .head(&staging_key(&key2))
        .await
        .expect("head")
        .expect("exists");
    store.promote(&key2, &info).await.expect("promote again");
}

pub async fn list_staging_lists_only_old_staging_objects(store: Store) {
    let d = digest_of(b"list");
    let key = staging(&d, "l1");
    write_staging(&store, &key, b"list").await;
    store
        .put(&file_key(&d), 4, stream_of(b"list", 4))
        .await
        .expect("put final");
    let future = Utc::now() + Duration::hours(1);
    let listed = store.list_staging(future).await.expect("list");
    assert_eq!(listed, vec![key.clone()], "only staging objects are listed");
    let past = Utc::now() - Duration::hours(1);
    assert!(
        store.list_staging(past).await.expect("list").is_empty(),
        "young objects are not listed"
    );
}

pub async fn large_objects_stream_in_bounded_chunks(store: Store) {
    let content: Vec<u8> = (0..(8 * 1024 * 1024 + 17))
        .map(|i: u32| (i % 251) as u8)
        .collect();
    let key = file_key(&digest_of(&content));
    store
        .put(&key, content.len() as u64, stream_of(&content, 64 * 1024))
        .await
        .expect("put");
    let mut s = store.get(&key).await.expect("get");
    let mut total = 0usize;
    let mut largest = 0usize;
    let mut hasher = tooltool_domain::ContentHasher::new();
    while let Some(chunk) = s.next().await {
        let chunk = chunk.expect("chunk");
        largest = largest.max(chunk.len());
        total += chunk.len();
        hasher.update(&chunk);
    }
    assert_eq!(total, content.len());
    assert_eq!(hasher.finish().digest, digest_of(&content));
    assert!(largest <= 1024 * 1024, "chunks stay small, got {largest}");
}
