//! Recording batches: files, slots, refusals, concurrent batches.

use super::*;

pub async fn create_batch_records_files_and_slots(store: Store) {
    let created = store
        .create_batch(batch(
            "two files",
            vec![
                file("b.txt", "bbb", Visibility::Internal),
                file("a.txt", "a", Visibility::Public),
            ],
        ))
        .await
        .expect("batch");
    assert_eq!(created.batch.author, "alice");
    assert_eq!(created.batch.message, "two files");
    assert_eq!(created.batch.uploaded, t0());
    let names: Vec<_> = created
        .batch
        .files
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(names, ["a.txt", "b.txt"], "files sorted by filename");
    assert!(created.batch.files.iter().all(|(_, f)| !f.has_instances()));
    assert_eq!(created.uploads.len(), 2);
    for up in &created.uploads {
        assert_eq!(up.region, region("east"));
        assert_eq!(up.expires, t0() + Duration::seconds(60));
        assert_eq!(
            store.pending_upload(&up.key).await.expect("read"),
            Some(up.clone())
        );
    }
    let again = store.get_batch(created.batch.id).await.expect("read");
    assert_eq!(again, Some(created.batch.clone()));
    assert_eq!(
        store
            .get_batch(created.batch.id + 1000)
            .await
            .expect("read"),
        None
    );
    let f = store
        .get_file(&digest_of(b"bbb"))
        .await
        .expect("read")
        .expect("file exists");
    assert_eq!((f.size, f.visibility), (3, Visibility::Internal));
}

pub async fn present_file_gets_no_slot(store: Store) {
    let d = upload_and_complete(&store, "tool.tar", "content", Visibility::Public).await;
    let f = store.get_file(&d).await.expect("read").expect("exists");
    assert_eq!(f.instances, vec![region("east")]);
    let created = store
        .create_batch(batch(
            "again",
            vec![file("renamed.tar", "content", Visibility::Public)],
        ))
        .await
        .expect("batch");
    assert!(
        created.uploads.is_empty(),
        "a verified file needs no upload"
    );
    assert!(created.batch.files[0].1.has_instances());
}

pub async fn rejected_batch_stores_nothing(store: Store) {
    upload_and_complete(&store, "x", "public content", Visibility::Public).await;
    let before = store
        .search_batches("", None, 100)
        .await
        .expect("search")
        .len();
    let cases = [
        (
            vec![
                file("new", "brand new", Visibility::Public),
                file("x", "public content", Visibility::Internal),
            ],
            "Cannot change already existing file's visibility level.",
        ),
        (
            vec![
                file("new", "brand new", Visibility::Public),
                DeclaredFile {
                    size: 999,
                    ..file("x", "public content", Visibility::Public)
                },
            ],
            "Size mismatch for x",
        ),
    ];
    for (files, message) in cases {
        match store.create_batch(batch("bad", files)).await {
            Err(MetadataError::Rejected(e)) => assert_eq!(e.to_string(), message),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
    let mut too_big = batch("big", vec![file("big", "0123456789", Visibility::Public)]);
    too_big.max_size = 5;
    assert!(matches!(
        store.create_batch(too_big).await,
        Err(MetadataError::Rejected(BatchError::TooLarge { .. }))
    ));
    assert_eq!(
        store
            .search_batches("", None, 100)
            .await
            .expect("search")
            .len(),
        before
    );
    assert_eq!(
        store
            .get_file(&digest_of(b"brand new"))
            .await
            .expect("read"),
        None
    );
    assert!(
        store
            .upload_state(&digest_of(b"brand new"))
            .await
            .expect("read")
            .pending
            .is_empty()
    );
}

pub async fn concurrent_batches_with_one_new_digest(store: Store) {
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store
                .create_batch(batch(
                    &format!("racer{i}"),
                    vec![file("same.bin", "same bytes", Visibility::Public)],
                ))
                .await
        }));
    }
    for t in tasks {
        let created = t.await.expect("join").expect("every racer succeeds");
        assert_eq!(created.uploads.len(), 1, "each racer gets its own slot");
    }
    let files = store
        .search_files("same.bin", None, 100)
        .await
        .expect("search");
    assert_eq!(files.len(), 1, "one file record");
    let state = store
        .upload_state(&digest_of(b"same bytes"))
        .await
        .expect("read");
    assert_eq!(state.pending.len(), 8);
}

/// Batches sharing new digests, declared in opposite orders (the crossed
/// filenames of two clients): every batch succeeds, none deadlocks.
pub async fn batches_sharing_digests_in_crossed_orders_all_succeed(store: Store) {
    for round in 0..10 {
        let (first, second) = (format!("first {round}"), format!("second {round}"));
        let mut tasks = Vec::new();
        for client in 0..20 {
            let store = Arc::clone(&store);
            let (first, second) = (first.clone(), second.clone());
            tasks.push(tokio::spawn(async move {
                let mut files = vec![
                    file("a.bin", &first, Visibility::Public),
                    file("b.bin", &second, Visibility::Public),
                ];
                if client % 2 == 1 {
                    files.reverse();
                }
                store
                    .create_batch(batch(&format!("crossed {round}/{client}"), files))
                    .await
            }));
        }
        for t in tasks {
            let created = t.await.expect("join").expect("every batch succeeds");
            assert_eq!(created.uploads.len(), 2, "a slot per new digest");
        }
    }
}

pub async fn same_digest_twice_in_a_batch_gets_one_slot(store: Store) {
    let created = store
        .create_batch(batch(
            "dup",
            vec![
                file("one", "twin", Visibility::Public),
                file("two", "twin", Visibility::Public),
            ],
        ))
        .await
        .expect("batch");
    assert_eq!(created.batch.files.len(), 2);
    assert_eq!(created.uploads.len(), 1);
}
