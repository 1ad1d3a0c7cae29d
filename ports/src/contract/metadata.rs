//! The MetadataStore contract.

use std::sync::Arc;

use chrono::Duration;
use tooltool_domain::{BatchError, DeclaredFile, Digest, PatchOp, RegionName, Visibility};

use super::{digest_of, staging, t0};
use crate::{MetadataError, MetadataStore, NewBatch};

type Store = Arc<dyn MetadataStore>;

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

pub async fn search_is_literal_and_capped(store: Store) {
    for (name, message, content) in [
        ("100%.txt", "done 100%", "p1"),
        ("a_b.txt", "under_score", "p2"),
        ("axb.txt", "plain", "p3"),
    ] {
        store
            .create_batch(batch(
                message,
                vec![file(name, content, Visibility::Public)],
            ))
            .await
            .expect("batch");
    }
    let messages =
        |v: Vec<crate::BatchRecord>| v.into_iter().map(|b| b.message).collect::<Vec<_>>();
    assert_eq!(
        messages(store.search_batches("%", None, 10).await.expect("search")),
        ["done 100%"]
    );
    assert_eq!(
        messages(store.search_batches("_", None, 10).await.expect("search")),
        ["under_score"]
    );
    assert_eq!(
        messages(store.search_batches("", None, 10).await.expect("search")),
        ["plain", "under_score", "done 100%"],
        "newest first"
    );
    assert_eq!(
        store
            .search_batches("", None, 2)
            .await
            .expect("search")
            .len(),
        2,
        "capped"
    );
    assert_eq!(
        store
            .search_batches("ali", None, 10)
            .await
            .expect("search")
            .len(),
        3,
        "author matches"
    );
    let names = |q: &str| {
        let store = Arc::clone(&store);
        let q = q.to_owned();
        async move {
            store
                .search_files(&q, None, 10)
                .await
                .expect("search")
                .into_iter()
                .map(|f| f.digest)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names("_b").await, [digest_of(b"p2")]);
    assert_eq!(names("%").await, [digest_of(b"p1")]);
    assert_eq!(names(".txt").await.len(), 3);
    let d = digest_of(b"p3");
    assert_eq!(
        names(&d.as_str()[..10]).await,
        std::slice::from_ref(&d),
        "digest prefix"
    );
    assert!(
        names(&d.as_str()[1..20]).await.is_empty(),
        "digest infix is not a prefix"
    );
    assert!(
        store
            .search_files("", None, 10)
            .await
            .expect("search")
            .iter()
            .all(|f| !f.has_instances())
    );
}

pub async fn upload_claims_are_exclusive_until_the_lease_ends(store: Store) {
    let created = store
        .create_batch(batch(
            "claims",
            vec![
                file("c", "claimed", Visibility::Public),
                file("d", "due", Visibility::Public),
            ],
        ))
        .await
        .expect("batch");
    let c = &created.uploads[0].key;
    let lease = t0() + Duration::seconds(30);
    assert!(store.claim_upload(c, t0(), lease).await.expect("claim"));
    assert!(
        !store
            .claim_upload(c, t0() + Duration::seconds(29), lease)
            .await
            .expect("claim")
    );
    let due = store.claim_due_uploads(t0(), lease, 10).await.expect("due");
    assert_eq!(due.len(), 1, "the claimed slot is not due");
    assert_ne!(&due[0].key, c);
    assert!(
        store
            .claim_due_uploads(t0(), lease, 10)
            .await
            .expect("due")
            .is_empty()
    );
    // A holder that died: its lease runs out and the slot is claimable again.
    assert!(
        store
            .claim_upload(
                c,
                t0() + Duration::seconds(30),
                lease + Duration::seconds(30)
            )
            .await
            .expect("claim")
    );
    store.release_upload(c).await.expect("release");
    assert!(
        store
            .claim_upload(c, t0(), lease)
            .await
            .expect("claim after release")
    );
    let gone = staging(&digest_of(b"never declared"), "nope");
    assert!(!store.claim_upload(&gone, t0(), lease).await.expect("claim"));
}

pub async fn complete_and_reject_settle_a_slot(store: Store) {
    let created = store
        .create_batch(batch(
            "settle",
            vec![file("s", "settled", Visibility::Public)],
        ))
        .await
        .expect("batch");
    let slot = created.uploads[0].clone();
    let d = slot.key.digest().clone();
    store
        .reject_upload(&slot.key, "wrong bytes".into())
        .await
        .expect("reject");
    let state = store.upload_state(&d).await.expect("state");
    assert!(state.pending.is_empty());
    assert_eq!(state.rejection.as_deref(), Some("wrong bytes"));
    assert!(!state.file.expect("file stays").has_instances());
    store
        .reject_upload(&slot.key, "again".into())
        .await
        .expect("idempotent");
    // A new slot clears the rejection.
    let again = store
        .create_batch(batch(
            "retry",
            vec![file("s", "settled", Visibility::Public)],
        ))
        .await
        .expect("batch");
    let state = store.upload_state(&d).await.expect("state");
    assert_eq!(state.rejection, None);
    assert_eq!(state.pending, again.uploads);
    store
        .complete_upload(&again.uploads[0].key, 7)
        .await
        .expect("complete");
    store
        .complete_upload(&again.uploads[0].key, 7)
        .await
        .expect("idempotent");
    let state = store.upload_state(&d).await.expect("state");
    assert!(state.pending.is_empty());
    let f = state.file.expect("file");
    assert_eq!(f.instances, vec![region("east")]);
    assert_eq!(f.size, 7);
}

pub async fn abandoned_slots_are_dropped(store: Store) {
    let mut early = batch("early", vec![file("e", "early", Visibility::Public)]);
    early.slot_expires = t0();
    let early = store.create_batch(early).await.expect("batch");
    let late = store
        .create_batch(batch("late", vec![file("l", "late", Visibility::Public)]))
        .await
        .expect("batch");
    let dropped = store
        .drop_abandoned_uploads(t0() + Duration::seconds(1))
        .await
        .expect("drop");
    assert_eq!(dropped, early.uploads);
    assert_eq!(
        store
            .pending_upload(&early.uploads[0].key)
            .await
            .expect("read"),
        None
    );
    assert!(
        store
            .pending_upload(&late.uploads[0].key)
            .await
            .expect("read")
            .is_some()
    );
}

pub async fn replication_claims(store: Store) {
    let d = upload_and_complete(&store, "r", "replicate me", Visibility::Public).await;
    let regions = vec![region("east"), region("west")];
    let lease = t0() + Duration::seconds(60);
    let claimed = store
        .claim_replication(regions.clone(), t0(), lease, 10)
        .await
        .expect("claim");
    assert_eq!(claimed.iter().map(|f| &f.digest).collect::<Vec<_>>(), [&d]);
    assert!(
        store
            .claim_replication(regions.clone(), t0(), lease, 10)
            .await
            .expect("claim")
            .is_empty(),
        "leased"
    );
    store.add_instance(&d, &region("west")).await.expect("add");
    store
        .add_instance(&d, &region("west"))
        .await
        .expect("idempotent");
    assert!(
        store
            .claim_replication(regions.clone(), lease, lease + Duration::seconds(60), 10)
            .await
            .expect("claim")
            .is_empty(),
        "complete"
    );
    assert!(
        store
            .claim_replication(vec![region("east")], t0(), lease, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    // Files without any instance cannot be replicated.
    store
        .create_batch(batch(
            "pending",
            vec![file("p", "no copy yet", Visibility::Public)],
        ))
        .await
        .expect("batch");
    assert!(
        store
            .claim_replication(regions, lease, lease + Duration::seconds(60), 10)
            .await
            .expect("claim")
            .is_empty()
    );
}

pub async fn patch_applies_operations_in_order(store: Store) {
    let d = upload_and_complete(&store, "m", "managed", Visibility::Public).await;
    let f = store
        .patch_file(
            &d,
            vec![
                PatchOp::SetVisibility(Visibility::Internal),
                PatchOp::DeleteInstances,
            ],
        )
        .await
        .expect("patch")
        .expect("exists");
    assert_eq!(f.visibility, Visibility::Internal);
    assert!(f.instances.is_empty());
    let f = store
        .patch_file(&d, vec![])
        .await
        .expect("patch")
        .expect("exists");
    assert_eq!(f.visibility, Visibility::Internal);
    let f = store
        .patch_file(
            &d,
            vec![
                PatchOp::SetVisibility(Visibility::Public),
                PatchOp::SetVisibility(Visibility::Internal),
            ],
        )
        .await
        .expect("patch")
        .expect("exists");
    assert_eq!(f.visibility, Visibility::Internal, "last operation wins");
    assert_eq!(
        store
            .patch_file(&digest_of(b"unknown"), vec![])
            .await
            .expect("patch"),
        None
    );
    // History stays.
    assert_eq!(
        store
            .search_batches("upload m", None, 10)
            .await
            .expect("search")
            .len(),
        1
    );
}

pub async fn backlog_counts_pending_uploads_and_missing_regions(store: Store) {
    let regions = vec![region("east"), region("west")];
    assert_eq!(
        store.backlog(regions.clone()).await.expect("backlog"),
        (0, 0)
    );
    let d = upload_and_complete(&store, "b", "in east only", Visibility::Public).await;
    store
        .create_batch(batch(
            "waiting",
            vec![file("w", "waiting", Visibility::Public)],
        ))
        .await
        .expect("batch");
    assert_eq!(
        store.backlog(regions.clone()).await.expect("backlog"),
        (1, 1)
    );
    assert_eq!(
        store.backlog(vec![region("east")]).await.expect("backlog"),
        (1, 0)
    );
    store.add_instance(&d, &region("west")).await.expect("add");
    assert_eq!(store.backlog(regions).await.expect("backlog"), (1, 0));
}

pub async fn instance_regions_count_files_per_region(store: Store) {
    assert_eq!(store.instance_regions().await.expect("regions"), vec![]);
    let a = upload_and_complete(&store, "a", "first", Visibility::Public).await;
    let b = upload_and_complete(&store, "b", "second", Visibility::Internal).await;
    store
        .create_batch(batch(
            "waiting",
            vec![file("w", "not uploaded", Visibility::Public)],
        ))
        .await
        .expect("batch");
    store.add_instance(&a, &region("west")).await.expect("add");
    store.add_instance(&b, &region("west")).await.expect("add");
    store.add_instance(&a, &region("attic")).await.expect("add");
    // Uploads land in "east" (see `batch`).
    assert_eq!(
        store.instance_regions().await.expect("regions"),
        vec![
            (region("attic"), 1),
            (region("east"), 2),
            (region("west"), 2)
        ],
        "files with a copy, per region, by name; a file without one counts nowhere"
    );
}

pub async fn legacy_batches_import_once_with_their_ids(store: Store) {
    let big = crate::FileRecord {
        digest: digest_of(b"a three gigabyte toolchain"),
        size: 3 * 1024 * 1024 * 1024,
        visibility: Visibility::Internal,
        instances: vec![region("us-east-1"), region("us-west-2")],
    };
    let lost = crate::FileRecord {
        digest: digest_of(b"never verified"),
        size: 5,
        visibility: Visibility::Public,
        instances: vec![],
    };
    let imported = crate::ImportedBatch {
        id: 4242,
        uploaded: t0(),
        author: "releng@mozilla.com".into(),
        message: "Bug 1 - legacy".into(),
        files: vec![
            ("big.tar.xz".into(), big.clone()),
            ("lost.txt".into(), lost.clone()),
        ],
    };
    assert!(store.import_batch(imported.clone()).await.expect("import"));
    assert!(
        !store.import_batch(imported.clone()).await.expect("again"),
        "idempotent"
    );
    let b = store.get_batch(4242).await.expect("read").expect("kept id");
    assert_eq!(
        (b.author.as_str(), b.message.as_str(), b.uploaded),
        ("releng@mozilla.com", "Bug 1 - legacy", t0())
    );
    assert_eq!(
        b.files,
        vec![
            ("big.tar.xz".into(), big.clone()),
            ("lost.txt".into(), lost.clone())
        ]
    );
    assert_eq!(
        store.get_file(&lost.digest).await.expect("read"),
        Some(lost)
    );
    // A new batch gets a new id, not an imported one.
    let created = store
        .create_batch(batch(
            "after import",
            vec![file("n", "new after import", Visibility::Public)],
        ))
        .await
        .expect("batch");
    assert!(created.batch.id > 4242, "{}", created.batch.id);
    for q in ["legacy", "releng@", "mozilla.com"] {
        assert_eq!(
            store
                .search_batches(q, None, 10)
                .await
                .expect("search")
                .iter()
                .map(|b| b.id)
                .collect::<Vec<_>>(),
            [4242],
            "{q}: imported batches are found by message and by author"
        );
    }
}

pub async fn batches_are_found_by_author_among_many(store: Store) {
    for i in 0..40 {
        let mut b = batch(
            &format!("m{i}"),
            vec![file(
                &format!("f{i}"),
                &format!("by author {i}"),
                Visibility::Public,
            )],
        );
        b.author = format!("dev{i}@corp.example");
        store.create_batch(b).await.expect("batch");
    }
    let mut solo = batch("solo", vec![file("s", "solo content", Visibility::Public)]);
    solo.author = "solo@else.example".into();
    store.create_batch(solo).await.expect("batch");
    let search = |q: &str, before: Option<i64>, limit: usize| {
        let store = Arc::clone(&store);
        let q = q.to_owned();
        async move {
            store
                .search_batches(&q, before, limit)
                .await
                .expect("search")
                .into_iter()
                .map(|b| (b.id, b.author))
                .collect::<Vec<_>>()
        }
    };
    let authors = |v: &[(i64, String)]| v.iter().map(|(_, a)| a.clone()).collect::<Vec<_>>();
    // Many authors match (a domain): newest first, capped, paged.
    let domain = search("corp.example", None, 100).await;
    assert_eq!(domain.len(), 40);
    assert_eq!(domain[0].1, "dev39@corp.example");
    let first = search("corp.example", None, 10).await;
    assert_eq!(first, domain[..10]);
    let next = search("corp.example", Some(first[9].0), 10).await;
    assert_eq!(next, domain[10..20]);
    // A few authors match.
    let mut expected: Vec<String> = (30..40)
        .rev()
        .map(|i| format!("dev{i}@corp.example"))
        .collect();
    expected.push("dev3@corp.example".into());
    assert_eq!(authors(&search("dev3", None, 100).await), expected);
    assert_eq!(authors(&search("dev3", None, 3).await), expected[..3]);
    assert_eq!(
        authors(&search("solo@", None, 100).await),
        ["solo@else.example"]
    );
    assert_eq!(search("nobody@", None, 100).await, []);
}

pub async fn searches_page_with_cursors(store: Store) {
    for i in 0..5 {
        store
            .create_batch(batch(
                &format!("paged {i}"),
                vec![file(
                    &format!("paged-{i}.bin"),
                    &format!("paged content {i}"),
                    Visibility::Public,
                )],
            ))
            .await
            .expect("batch");
    }
    let first = store
        .search_batches("paged", None, 2)
        .await
        .expect("page 1");
    assert_eq!(
        first.iter().map(|b| b.message.as_str()).collect::<Vec<_>>(),
        ["paged 4", "paged 3"]
    );
    let second = store
        .search_batches("paged", Some(first[1].id), 2)
        .await
        .expect("page 2");
    assert_eq!(
        second
            .iter()
            .map(|b| b.message.as_str())
            .collect::<Vec<_>>(),
        ["paged 2", "paged 1"]
    );
    let last = store
        .search_batches("paged", Some(second[1].id), 2)
        .await
        .expect("page 3");
    assert_eq!(
        last.iter().map(|b| b.message.as_str()).collect::<Vec<_>>(),
        ["paged 0"]
    );

    let mut all: Vec<_> = (0..5)
        .map(|i| digest_of(format!("paged content {i}").as_bytes()))
        .collect();
    all.sort();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .search_files("paged-", after.clone(), 2)
            .await
            .expect("files page");
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        after = page.last().map(|f| f.digest.clone());
        seen.extend(page.into_iter().map(|f| f.digest));
    }
    assert_eq!(seen, all, "every match once, in digest order");
}
