//! Files after upload: replication, management, counts, legacy imports.

use super::*;
use crate::{Imported, WhenTaken};

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
    assert_eq!(
        store
            .import_batch(imported.clone(), WhenTaken::Refuse)
            .await
            .expect("import"),
        Imported::Kept
    );
    assert_eq!(
        store
            .import_batch(imported.clone(), WhenTaken::Renumber)
            .await
            .expect("again"),
        Imported::Present(4242),
        "idempotent, whatever the policy"
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

/// A batch of the original whose id is taken by one of ours: refused, or
/// stored under a new id above every other and found again by its legacy
/// id; our batch is untouched.
pub async fn legacy_batches_renumber_when_their_id_is_taken(store: Store) {
    let ours = store
        .create_batch(batch(
            "ours",
            vec![file("ours.txt", "our own", Visibility::Public)],
        ))
        .await
        .expect("batch");
    let taken = ours.batch.id;
    let theirs = crate::FileRecord {
        digest: digest_of(b"legacy content"),
        size: 14,
        visibility: Visibility::Public,
        instances: vec![region("us-east-1")],
    };
    let legacy = crate::ImportedBatch {
        id: taken,
        uploaded: t0(),
        author: "releng@mozilla.com".into(),
        message: "Bug 2 - legacy".into(),
        files: vec![("legacy.txt".into(), theirs.clone())],
    };
    assert_eq!(
        store
            .import_batch(legacy.clone(), WhenTaken::Refuse)
            .await
            .expect("import"),
        Imported::Taken
    );
    assert_eq!(
        store.get_file(&theirs.digest).await.expect("read"),
        None,
        "a refused import stores nothing"
    );
    let Imported::Renumbered(new) = store
        .import_batch(legacy.clone(), WhenTaken::Renumber)
        .await
        .expect("renumber")
    else {
        panic!("expected a new id");
    };
    assert!(new > taken, "{new} > {taken}");
    let b = store
        .get_batch(new)
        .await
        .expect("read")
        .expect("renumbered");
    assert_eq!(b.message, "Bug 2 - legacy");
    assert_eq!(b.files, vec![("legacy.txt".into(), theirs)]);
    let mine = store.get_batch(taken).await.expect("read").expect("ours");
    assert_eq!(mine.message, "ours", "our batch is untouched");
    for when_taken in [WhenTaken::Refuse, WhenTaken::Renumber] {
        assert_eq!(
            store
                .import_batch(legacy.clone(), when_taken)
                .await
                .expect("again"),
            Imported::Present(new),
            "found by its legacy id"
        );
    }
    let next = store
        .create_batch(batch(
            "after",
            vec![file("after.txt", "after the import", Visibility::Public)],
        ))
        .await
        .expect("batch");
    assert!(next.batch.id > new, "{} > {new}", next.batch.id);
}
