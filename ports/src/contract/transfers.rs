//! The BlobStore contract, part two: the transfers a store's URLs send
//! through this server ([`crate::Receiving`], [`crate::Serving`]).

use std::sync::Arc;

use bytes::Bytes;
use chrono::{Duration, Utc};
use futures_util::StreamExt;

use super::blob::{Store, collect, file_key, key_of, query_of, staging_key, stream_of};
use super::{digest_of, staging};
use crate::{BlobError, ByteRange, Receiving, Serving};

/// The receiving part of a store the suite was told receives uploads.
fn receiving(store: &Store) -> Arc<dyn Receiving> {
    store
        .receiving()
        .expect("a store tested as receiving uploads offers Receiving")
}

/// The serving part of a store the suite was told serves downloads.
fn serving(store: &Store) -> Arc<dyn Serving> {
    store
        .serving()
        .expect("a store tested as serving downloads offers Serving")
}

/// Upload URLs of `size` bytes (one the store receives through this
/// server) grant exactly their slot and size until they expire.
pub async fn signed_put_urls_grant_exactly_what_they_say(store: Store, size: u64) {
    let receiving = receiving(&store);
    let now = Utc::now();
    let d = digest_of(b"signed");
    let slot = staging(&d, "s1");
    let put = store
        .presign_put(&slot, size, now + Duration::seconds(60))
        .await
        .expect("presign");
    let key = key_of(&put);
    assert_eq!(key, slot.to_string());
    let q = query_of(&put);
    assert_eq!(
        receiving.authorize_put(&key, q, now).expect("valid"),
        slot,
        "the URL grants its slot"
    );
    let refuse = |key: &str, query: &str, at| {
        assert!(
            matches!(
                receiving.authorize_put(key, query, at),
                Err(BlobError::Forbidden(_))
            ),
            "PUT {key} {query} must be refused"
        );
    };
    refuse(&key, q, now + Duration::seconds(61));
    refuse(&file_key(&d).to_string(), q, now);
    let sized = format!("size={size}");
    refuse(&key, &q.replace(&sized, &format!("size={}", size + 1)), now);
    refuse(&key, &q.replace("expires=", "expires=9"), now);
    refuse(&key, "", now);
    // A key that names nothing is refused like an altered one.
    refuse(&format!("{key}/x"), q, now);
    refuse("../../etc/passwd", q, now);
    // A download URL grants no upload.
    let get = store
        .presign_get(&d, now + Duration::seconds(60))
        .await
        .expect("presign");
    refuse(&key_of(&get), query_of(&get), now);
}

/// Stores that receive only large uploads (S3 above its single-PUT
/// limit) hand out URLs of their own service up to `limit` bytes: this
/// server accepts none of them.
pub async fn uploads_up_to_the_limit_go_to_the_store(store: Store, limit: u64) {
    let receiving = receiving(&store);
    let now = Utc::now();
    let slot = staging(&digest_of(b"direct"), "d1");
    let put = store
        .presign_put(&slot, limit, now + Duration::seconds(60))
        .await
        .expect("presign");
    assert!(!put.contains("/blob/"), "{put} goes to the store itself");
    let path = put.split('?').next().unwrap_or_default();
    let key = path
        .rsplit_once("/pending/")
        .map(|(_, k)| format!("pending/{k}"));
    assert_eq!(key.as_deref(), Some(&*slot.to_string()), "{put}");
    assert!(matches!(
        receiving.authorize_put(&slot.to_string(), query_of(&put), now),
        Err(BlobError::Forbidden(_))
    ));
}

/// Download URLs grant exactly their file until they expire.
pub async fn signed_get_urls_grant_exactly_what_they_say(store: Store) {
    let serving = serving(&store);
    let now = Utc::now();
    let d = digest_of(b"signed");
    let get = store
        .presign_get(&d, now + Duration::seconds(60))
        .await
        .expect("presign");
    assert_eq!(
        serving
            .authorize_get(&key_of(&get), query_of(&get), now)
            .expect("valid"),
        d
    );
    let refuse = |key: &str, query: &str, at| {
        assert!(
            matches!(
                serving.authorize_get(key, query, at),
                Err(BlobError::Forbidden(_))
            ),
            "GET {key} {query} must be refused"
        );
    };
    refuse(&key_of(&get), query_of(&get), now + Duration::seconds(61));
    refuse(
        &file_key(&digest_of(b"other")).to_string(),
        query_of(&get),
        now,
    );
    refuse(&key_of(&get), "", now);
    let put = store
        .presign_put(&staging(&d, "s1"), 6, now + Duration::seconds(60))
        .await
        .expect("presign");
    refuse(&key_of(&put), query_of(&put), now);
}

/// `receive` hashes what it stores and keeps nothing of a refused or
/// broken upload; `content` is received in chunks of `chunk` bytes (large
/// contents exercise stores that write in parts).
pub async fn receive_hashes_and_keeps_nothing_on_failure(store: Store, content: Vec<u8>) {
    let receiving = receiving(&store);
    let size = content.len() as u64;
    let chunk = (content.len() / 7).max(1);
    let d = digest_of(&content);
    let key = staging(&d, "r1");
    let (observed, info) = receiving
        .receive(&key, size, stream_of(&content, chunk))
        .await
        .expect("receive");
    assert_eq!(observed.size, size);
    assert_eq!(observed.digest, d);
    assert_eq!(
        store.head(&staging_key(&key)).await.expect("head"),
        Some(info.clone())
    );
    assert_eq!(
        collect(store.get(&staging_key(&key)).await.expect("get")).await,
        content
    );
    // The info names the version that was hashed: it promotes.
    let big = staging(&d, "r2");
    assert!(matches!(
        receiving.receive(&big, size - 1, stream_of(&content, chunk)).await,
        Err(BlobError::TooLarge { limit }) if limit == size - 1
    ));
    let mut cut_short: Vec<Result<Bytes, BlobError>> = content
        .chunks(chunk)
        .take(6)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    cut_short.push(Err(BlobError::interrupted("client went away")));
    let cut = staging(&d, "r3");
    assert!(
        receiving
            .receive(&cut, size, Box::pin(futures_util::stream::iter(cut_short)))
            .await
            .is_err()
    );
    // An upload abandoned half way (the request's task dropped) too.
    let dropped = staging(&d, "r4");
    let endless = futures_util::stream::iter(
        content
            .chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    )
    .chain(futures_util::stream::pending());
    let abandoned = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        receiving.receive(&dropped, size * 2, Box::pin(endless)),
    )
    .await;
    assert!(abandoned.is_err(), "still waiting for bytes when dropped");
    for gone in [&big, &cut, &dropped] {
        assert_eq!(store.head(&staging_key(gone)).await.expect("head"), None);
    }
    // Nothing unfinished either: the sweep would find only the slot that
    // was received (abandoned writes are discarded in the background, so
    // give them a moment).
    let mut listed = Vec::new();
    for _ in 0..50 {
        listed = store
            .list_staging(Utc::now() + Duration::hours(1))
            .await
            .expect("list");
        if listed == vec![key.clone()] {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(listed, vec![key.clone()]);
    store
        .promote(&key, &info)
        .await
        .expect("promote the received version");
    assert_eq!(
        collect(store.get(&file_key(&d)).await.expect("get")).await,
        content
    );
}

/// Unfinished writes of a slot are listed for the sweep and deleted with
/// it. `content` must be large enough that the store writes it in parts.
pub async fn unfinished_writes_are_swept(store: Store, content: Vec<u8>) {
    let receiving = receiving(&store);
    let key = staging(&digest_of(&content), "u1");
    // A receive that stops half way while still running: its task is
    // stuck (not dropped), like one in a process that crashed.
    let half: Vec<Result<Bytes, BlobError>> = content
        .chunks(content.len() / 4)
        .take(3)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let stuck = futures_util::stream::iter(half).chain(futures_util::stream::pending());
    let receiving2 = Arc::clone(&receiving);
    let key2 = key.clone();
    let size = content.len() as u64;
    let task = tokio::spawn(async move { receiving2.receive(&key2, size, Box::pin(stuck)).await });
    let mut listed = Vec::new();
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        listed = store
            .list_staging(Utc::now() + Duration::hours(1))
            .await
            .expect("list");
        if !listed.is_empty() {
            break;
        }
    }
    assert_eq!(listed, vec![key.clone()], "an unfinished write is listed");
    assert!(
        store
            .list_staging(Utc::now() - Duration::hours(1))
            .await
            .expect("list")
            .is_empty(),
        "young writes are not listed"
    );
    store.delete(&staging_key(&key)).await.expect("delete");
    assert!(
        store
            .list_staging(Utc::now() + Duration::hours(1))
            .await
            .expect("list")
            .is_empty(),
        "deleting the slot discarded its unfinished write"
    );
    task.abort();
}

pub async fn open_serves_ranges(store: Store) {
    let served = serving(&store);
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

/// Stores that sign download URLs for another service serve nothing
/// themselves.
pub async fn serves_no_downloads(store: Store) {
    assert!(store.serving().is_none());
}
