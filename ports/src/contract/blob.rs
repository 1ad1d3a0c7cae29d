//! The BlobStore contract.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{Duration, Utc};
use futures_util::StreamExt;
use tooltool_domain::{Digest, ObjectKey, StagingKey};

use super::{digest_of, staging};
use crate::{BlobError, BlobStore, ByteRange, ByteStream, SelfServed, SignedMethod};

type Store = Arc<dyn BlobStore>;

/// The key of the verified file `digest`.
fn file_key(digest: &Digest) -> ObjectKey {
    ObjectKey::File(digest.clone())
}

/// The self-serving part of a store the suite was told serves itself.
fn served(store: &Store) -> Arc<dyn SelfServed> {
    store
        .self_served()
        .expect("a store tested as self-served offers SelfServed")
}

fn stream_of(bytes: &[u8], chunk: usize) -> ByteStream {
    let chunks: Vec<Result<Bytes, BlobError>> = bytes
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures_util::stream::iter(chunks))
}

async fn collect(mut s: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk.expect("chunk"));
    }
    out
}

fn query_of(url: &str) -> &str {
    url.split_once('?').map(|(_, q)| q).unwrap_or_default()
}

fn key_of(url: &str) -> String {
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

/// Writes a staging object the way the store's uploads arrive: received
/// through this server when it serves itself, else put (as a client's PUT
/// to a presigned URL would).
async fn write_staging(store: &Store, key: &StagingKey, content: &[u8]) {
    let size = content.len() as u64;
    match store.self_served() {
        Some(served) => {
            served
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

fn staging_key(key: &StagingKey) -> ObjectKey {
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

pub async fn signed_urls_grant_exactly_what_they_say(store: Store) {
    let served = served(&store);
    let now = Utc::now();
    let d = digest_of(b"signed");
    let slot = staging(&d, "s1");
    let put = store
        .presign_put(&slot, 6, now + Duration::seconds(60))
        .await
        .expect("presign");
    let key = key_of(&put);
    assert_eq!(key, slot.to_string());
    let q = query_of(&put);
    assert_eq!(
        served
            .authorize(SignedMethod::Put, &key, q, now)
            .expect("valid"),
        ObjectKey::from(slot.clone()),
        "the URL grants its slot"
    );
    let refuse = |method, key: &str, query: &str, at| {
        assert!(
            matches!(
                served.authorize(method, key, query, at),
                Err(BlobError::Forbidden(_))
            ),
            "{method:?} {key} {query} must be refused"
        );
    };
    refuse(SignedMethod::Put, &key, q, now + Duration::seconds(61));
    refuse(SignedMethod::Get, &key, q, now);
    refuse(SignedMethod::Put, &file_key(&d).to_string(), q, now);
    refuse(SignedMethod::Put, &key, &q.replace("size=6", "size=7"), now);
    refuse(
        SignedMethod::Put,
        &key,
        &q.replace("expires=", "expires=9"),
        now,
    );
    refuse(SignedMethod::Put, &key, "", now);
    // A key that names nothing is refused like an altered one.
    refuse(SignedMethod::Put, &format!("{key}/x"), q, now);
    refuse(SignedMethod::Put, "../../etc/passwd", q, now);
    let get = store
        .presign_get(&d, now + Duration::seconds(60))
        .await
        .expect("presign");
    assert_eq!(
        served
            .authorize(SignedMethod::Get, &key_of(&get), query_of(&get), now)
            .expect("valid"),
        file_key(&d)
    );
    refuse(
        SignedMethod::Get,
        &key_of(&get),
        query_of(&get),
        now + Duration::seconds(61),
    );
}

pub async fn receive_hashes_and_keeps_nothing_on_failure(store: Store) {
    let served = served(&store);
    let content = b"received content";
    let d = digest_of(content);
    let key = staging(&d, "r1");
    let (observed, info) = served
        .receive(&key, content.len() as u64, stream_of(content, 5))
        .await
        .expect("receive");
    assert_eq!(observed.size, content.len() as u64);
    assert_eq!(observed.digest, d);
    assert_eq!(
        store.head(&staging_key(&key)).await.expect("head"),
        Some(info)
    );
    let big = staging(&d, "r2");
    assert!(matches!(
        served.receive(&big, 4, stream_of(content, 5)).await,
        Err(BlobError::TooLarge { limit: 4 })
    ));
    assert_eq!(store.head(&staging_key(&big)).await.expect("head"), None);
    let broken: ByteStream = Box::pin(futures_util::stream::iter(vec![
        Ok(Bytes::from_static(b"part")),
        Err(BlobError::interrupted("client went away")),
    ]));
    let cut = staging(&d, "r3");
    assert!(served.receive(&cut, 100, broken).await.is_err());
    assert_eq!(store.head(&staging_key(&cut)).await.expect("head"), None);
    assert_eq!(
        store
            .list_staging(Utc::now() + Duration::hours(1))
            .await
            .expect("list"),
        vec![key]
    );
}

pub async fn open_serves_ranges(store: Store) {
    let served = served(&store);
    let content = b"0123456789";
    let digest = digest_of(content);
    store
        .put(&file_key(&digest), 10, stream_of(content, 3))
        .await
        .expect("put");
    for (range, expected, slice) in [
        (ByteRange::Full, &b"0123456789"[..], None),
        (ByteRange::Inclusive(2, 4), b"234", Some((2, 4))),
        (ByteRange::Inclusive(8, 100), b"89", Some((8, 9))),
        (ByteRange::From(7), b"789", Some((7, 9))),
        (ByteRange::Suffix(3), b"789", Some((7, 9))),
        (ByteRange::Suffix(30), b"0123456789", Some((0, 9))),
    ] {
        let opened = served.open(&digest, range).await.expect("open");
        assert_eq!(opened.size, 10);
        assert_eq!(opened.digest, digest);
        assert_eq!(opened.range, slice, "{range:?}");
        assert_eq!(collect(opened.body).await, expected, "{range:?}");
    }
    for bad in [
        ByteRange::From(10),
        ByteRange::Inclusive(5, 2),
        ByteRange::Suffix(0),
    ] {
        assert!(
            matches!(
                served.open(&digest, bad).await,
                Err(BlobError::RangeNotSatisfiable { size: 10 })
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        served.open(&digest_of(b"absent"), ByteRange::Full).await,
        Err(BlobError::NotFound)
    ));
}

/// Stores that sign URLs for another service serve nothing themselves.
pub async fn offers_no_self_serving(store: Store) {
    assert!(store.self_served().is_none());
}
