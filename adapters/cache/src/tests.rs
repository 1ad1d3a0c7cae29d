//! The cache over a mocked store: what is kept, what drops it, and the
//! race between a read and a change.

use std::sync::{Arc, Mutex, Weak};

use tooltool_domain::{Digest, PatchOp, RegionName, StagingKey, Visibility};
use tooltool_ports::{FileChanges, FileRecord, MetadataStore, MockMetadataStore};

use crate::CachedStore;

type Sink = Arc<Mutex<Option<Weak<dyn FileChanges>>>>;

fn digest(n: u8) -> Digest {
    Digest::from_bytes(&[n; 64])
}

fn record(n: u8, regions: &[&str]) -> FileRecord {
    FileRecord {
        digest: digest(n),
        size: 10,
        visibility: Visibility::Public,
        instances: regions
            .iter()
            .map(|r| RegionName::parse(r).expect("region"))
            .collect(),
    }
}

/// A mock whose `watch_files` keeps the sink; `watching` says whether it
/// reports changes at once.
fn mock(watching: bool) -> (MockMetadataStore, Sink) {
    let sink: Sink = Arc::default();
    let mut store = MockMetadataStore::new();
    let kept = Arc::clone(&sink);
    store.expect_watch_files().times(1).returning(move |s| {
        if watching {
            s.upgrade().expect("sink alive").watching();
        }
        *kept.lock().expect("lock") = Some(s);
    });
    (store, sink)
}

fn tell(sink: &Sink) -> Arc<dyn FileChanges> {
    sink.lock()
        .expect("lock")
        .as_ref()
        .and_then(Weak::upgrade)
        .expect("the cache is alive")
}

fn reads(store: &mut MockMetadataStore, times: usize, answer: Option<FileRecord>) {
    store
        .expect_get_file()
        .times(times)
        .returning(move |_| Ok(answer.clone()));
}

#[tokio::test]
async fn a_verified_file_is_read_once_then_answered_from_memory() {
    let (mut store, _sink) = mock(true);
    reads(&mut store, 1, Some(record(1, &["us-east-1"])));
    let cache = CachedStore::new(Arc::new(store), 1 << 20);
    for _ in 0..3 {
        let got = cache.get_file(&digest(1)).await.expect("read");
        assert_eq!(got, Some(record(1, &["us-east-1"])));
    }
    let stats = cache.cache_stats().expect("stats");
    assert_eq!((stats.hits, stats.misses, stats.entries), (2, 1, 1));
}

#[tokio::test]
async fn nothing_is_cached_until_the_store_reports_changes() {
    let (mut store, sink) = mock(false);
    reads(&mut store, 3, Some(record(1, &["us-east-1"])));
    let cache = CachedStore::new(Arc::new(store), 1 << 20);
    cache.get_file(&digest(1)).await.expect("read");
    cache.get_file(&digest(1)).await.expect("read");
    // Once it does, the next read is kept and the one after is a hit.
    tell(&sink).watching();
    cache.get_file(&digest(1)).await.expect("read");
    cache.get_file(&digest(1)).await.expect("read");
    assert_eq!(cache.cache_stats().expect("stats").hits, 1);
}

#[tokio::test]
async fn missing_and_unverified_files_are_always_read_from_the_store() {
    let (mut store, _sink) = mock(true);
    store
        .expect_get_file()
        .withf(|d| *d == digest(1))
        .times(3)
        .returning(|_| Ok(None));
    store
        .expect_get_file()
        .withf(|d| *d == digest(2))
        .times(3)
        .returning(|_| Ok(Some(record(2, &[]))));
    let cache = CachedStore::new(Arc::new(store), 1 << 20);
    for _ in 0..3 {
        assert_eq!(cache.get_file(&digest(1)).await.expect("read"), None);
        assert_eq!(
            cache.get_file(&digest(2)).await.expect("read"),
            Some(record(2, &[]))
        );
    }
}

#[tokio::test]
async fn a_reported_change_drops_the_file_and_only_it() {
    let (mut store, sink) = mock(true);
    let answers = Arc::new(Mutex::new(vec![
        record(1, &["us-east-1"]),
        record(1, &["us-east-1", "us-west-2"]),
    ]));
    store
        .expect_get_file()
        .withf(|d| *d == digest(1))
        .times(2)
        .returning(move |_| Ok(Some(answers.lock().expect("lock").remove(0))));
    reads(&mut store, 1, Some(record(2, &["us-east-1"])));
    let cache = CachedStore::new(Arc::new(store), 1 << 20);
    cache.get_file(&digest(1)).await.expect("read");
    cache.get_file(&digest(2)).await.expect("read");
    tell(&sink).changed(&digest(1));
    assert_eq!(
        cache.get_file(&digest(1)).await.expect("read"),
        Some(record(1, &["us-east-1", "us-west-2"]))
    );
    // The other file is still answered from memory (its mock allows one read).
    cache.get_file(&digest(2)).await.expect("read");
}

#[tokio::test]
async fn an_interruption_bypasses_the_cache_until_watching_drops_everything() {
    let (mut store, sink) = mock(true);
    reads(&mut store, 4, Some(record(1, &["us-east-1"])));
    let cache = CachedStore::new(Arc::new(store), 1 << 20);
    cache.get_file(&digest(1)).await.expect("read"); // 1: kept
    cache.get_file(&digest(1)).await.expect("read"); // hit
    tell(&sink).interrupted();
    cache.get_file(&digest(1)).await.expect("read"); // 2: not kept
    cache.get_file(&digest(1)).await.expect("read"); // 3
    tell(&sink).watching();
    cache.get_file(&digest(1)).await.expect("read"); // 4: kept again
    cache.get_file(&digest(1)).await.expect("read"); // hit
}

#[tokio::test]
async fn a_change_reported_during_the_read_is_not_hidden_by_it() {
    let (mut store, sink) = mock(true);
    let during = Arc::clone(&sink);
    let mut first = true;
    store.expect_get_file().times(2).returning(move |d| {
        if first {
            // The store answered the old record; the change commits and is
            // reported before the reader keeps it.
            first = false;
            tell(&during).changed(d);
            Ok(Some(record(1, &["us-east-1"])))
        } else {
            Ok(Some(record(1, &[])))
        }
    });
    let cache = CachedStore::new(Arc::new(store), 1 << 20);
    cache.get_file(&digest(1)).await.expect("read");
    assert_eq!(
        cache.get_file(&digest(1)).await.expect("read"),
        Some(record(1, &[])),
        "the record read before the change was not kept"
    );
}

#[derive(Debug, Clone, Copy)]
enum Write {
    Patch,
    Complete,
    AddInstance,
    Import,
    CreateBatch,
}

/// Every write of a file through the cache drops its entry when it
/// returns, failed or not (a failed commit may have committed), so this
/// process reads its own writes.
#[tokio::test]
async fn writes_through_the_cache_drop_their_file() {
    use tooltool_ports::MetadataError;
    let down = || MetadataError::unavailable("down");
    for write in [
        Write::Patch,
        Write::Complete,
        Write::AddInstance,
        Write::Import,
        Write::CreateBatch,
    ] {
        let (mut store, _sink) = mock(true);
        reads(&mut store, 2, Some(record(1, &["us-east-1"])));
        store.expect_patch_file().returning(move |_, _| Err(down()));
        store.expect_complete_upload().returning(|_, _| Ok(()));
        store
            .expect_add_instance()
            .returning(move |_, _| Err(down()));
        store
            .expect_import_batch()
            .returning(move |_, _| Err(down()));
        store.expect_create_batch().returning(move |_| Err(down()));
        let cache = CachedStore::new(Arc::new(store), 1 << 20);
        cache.get_file(&digest(1)).await.expect("read");
        let region = RegionName::parse("eu").expect("region");
        match write {
            Write::Patch => drop(
                cache
                    .patch_file(&digest(1), vec![PatchOp::DeleteInstances])
                    .await,
            ),
            Write::Complete => {
                let key = StagingKey::new(digest(1), "a".repeat(16)).expect("key");
                drop(cache.complete_upload(&key, 10).await);
            }
            Write::AddInstance => drop(cache.add_instance(&digest(1), &region).await),
            Write::Import => drop(
                cache
                    .import_batch(
                        tooltool_ports::ImportedBatch {
                            id: 1,
                            uploaded: chrono::DateTime::UNIX_EPOCH,
                            author: "a".into(),
                            message: "m".into(),
                            files: vec![("f".into(), record(1, &["eu"]))],
                        },
                        tooltool_ports::WhenTaken::Refuse,
                    )
                    .await,
            ),
            Write::CreateBatch => drop(
                cache
                    .create_batch(tooltool_ports::NewBatch {
                        author: "a".into(),
                        message: "m".into(),
                        uploaded: chrono::DateTime::UNIX_EPOCH,
                        files: vec![tooltool_domain::DeclaredFile {
                            filename: "f".into(),
                            digest: digest(1),
                            size: 10,
                            visibility: Visibility::Internal,
                        }],
                        slots: vec![StagingKey::new(digest(1), "b".repeat(16)).expect("key")],
                        region: region.clone(),
                        slot_expires: chrono::DateTime::UNIX_EPOCH,
                        max_size: 100,
                    })
                    .await,
            ),
        }
        cache.get_file(&digest(1)).await.expect("read");
        let stats = cache.cache_stats().expect("stats");
        assert_eq!(
            stats.misses, 2,
            "{write:?}: the second read went to the store"
        );
    }
}

#[tokio::test]
async fn the_size_bound_evicts() {
    let (mut store, _sink) = mock(true);
    store.expect_get_file().returning(|d| {
        Ok(Some(FileRecord {
            digest: d.clone(),
            ..record(0, &["us-east-1"])
        }))
    });
    // Room for about ten entries of ~600 bytes.
    let cache = CachedStore::new(Arc::new(store), 6_000);
    for n in 0..200u8 {
        cache.get_file(&digest(n)).await.expect("read");
    }
    let stats = cache.cache_stats().expect("stats");
    assert!(stats.bytes <= 6_000, "{stats:?}");
    assert!(stats.entries <= 12, "{stats:?}");
    assert!(stats.evictions >= 180, "{stats:?}");
}
