//! Use-case tests: the service against mockall mocks of its ports, so each
//! test states exactly which port calls a use case may and must make.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use mockall::predicate::eq;
use tooltool_domain::{
    ContentHasher, DeclaredFile, Digest, ObjectKey, Observed, PatchOp, Permissions, Principal,
    RegionName, ScopeSet, StagingKey, Visibility,
};
use tooltool_ports::{
    BatchRecord, BatchRequest, BlobError, CopySource, CreatedBatch, ErrorKind, FileRecord,
    MockBlobStore, MockClock, MockMetadataStore, ObjectInfo, PendingUpload, UploadProgress,
    UploadState,
};

use crate::service::{Service, Settings, Verified};

mod access;
mod downloads;
mod faults;
mod gateway;
mod lease;
mod recover;
mod regions;

const PREFIX: &str = "project:releng:services/tooltool/api";

pub(super) fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("valid")
}

pub(super) fn clock() -> Arc<MockClock> {
    let mut c = MockClock::new();
    c.expect_now().returning(now);
    Arc::new(c)
}

pub(super) fn region(name: &str) -> RegionName {
    RegionName::parse(name).expect("valid")
}

pub(super) fn digest(content: &[u8]) -> Digest {
    let mut h = ContentHasher::new();
    h.update(content);
    h.finish().digest
}

pub(super) fn blob(name: &str) -> MockBlobStore {
    let mut b = MockBlobStore::new();
    let r = region(name);
    b.expect_region().return_const(r);
    b.expect_low_on_space().return_const(None);
    b
}

pub(super) fn service(store: MockMetadataStore, blobs: Vec<MockBlobStore>) -> Service {
    service_with(store, blobs, Settings::new(Permissions::new(PREFIX, true)))
}

pub(super) fn service_with(
    store: MockMetadataStore,
    blobs: Vec<MockBlobStore>,
    settings: Settings,
) -> Service {
    Service::new(
        Arc::new(store),
        blobs.into_iter().map(|b| Arc::new(b) as _).collect(),
        clock(),
        Arc::new(tooltool_ports::NoMetrics),
        settings,
    )
    .with_chance(pick(0))
}

/// A chance that always picks the `index`-th candidate (tests that are not
/// about region choice get the first, as configured).
pub(super) fn pick(index: usize) -> Arc<tooltool_ports::MockChance> {
    let mut chance = tooltool_ports::MockChance::new();
    chance.expect_below().returning(move |n| index.min(n - 1));
    Arc::new(chance)
}

pub(super) fn who(scopes: &[&str]) -> Principal {
    Principal::authenticated(
        "alice",
        ScopeSet::new(scopes.iter().map(|s| format!("{PREFIX}/{s}"))),
    )
}

pub(super) fn slot(content: &[u8], size: u64) -> PendingUpload {
    PendingUpload {
        key: StagingKey::new(digest(content), "0123456789abcdef").expect("valid"),
        size,
        region: region("east"),
        expires: now() + Duration::seconds(60),
    }
}

/// A stream of `content` in one chunk, as a store's read or a request body.
pub(super) fn body(content: &'static [u8]) -> tooltool_ports::ByteStream {
    Box::pin(futures_util::stream::iter(vec![Ok(
        bytes::Bytes::from_static(content),
    )]))
}

pub(super) fn info(size: u64) -> ObjectInfo {
    ObjectInfo {
        size,
        etag: "v1".into(),
        modified: now(),
    }
}

pub(super) fn file(content: &[u8], visibility: Visibility, instances: &[&str]) -> FileRecord {
    FileRecord {
        digest: digest(content),
        size: content.len() as u64,
        visibility,
        instances: instances.iter().map(|r| region(r)).collect(),
    }
}

#[tokio::test]
async fn digest_mismatch_deletes_staging_and_never_records_an_instance() {
    let declared = slot(b"declared content", 16);
    let key = ObjectKey::from(declared.key.clone());
    let mut store = MockMetadataStore::new();
    store.expect_complete_upload().never();
    store.expect_add_instance().never();
    store
        .expect_reject_upload()
        .withf(|_, reason| reason.starts_with("uploaded content does not match"))
        .times(1)
        .returning(|_, _| Ok(()));
    let mut east = blob("east");
    east.expect_head()
        .with(eq(key.clone()))
        .returning(|_| Ok(Some(info(16))));
    east.expect_get()
        .returning(|_| Ok(body(b"DIFFERENT bytes!")));
    east.expect_promote().never();
    east.expect_delete()
        .with(eq(key))
        .times(1)
        .returning(|_| Ok(()));
    let svc = service(store, vec![east]);
    let verdict = svc.verify_claimed(&declared).await.expect("verified");
    assert!(matches!(verdict, Verified::Rejected(_)), "{verdict:?}");
}

/// No more than VERIFY_CONCURRENCY objects are read at once, however many
/// are due; each verification here runs from its HEAD to its delete, and
/// its read waits until the most the limit allows are in flight, so that
/// they overlap whatever the scheduling (a limit of one would hang: the
/// timeout turns that into a failure).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verifications_run_at_most_the_configured_number_at_once() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let due: Vec<PendingUpload> = (0..6u64)
        .map(|i| PendingUpload {
            key: StagingKey::new(digest(b"declared"), format!("{i:016x}")).expect("valid"),
            ..slot(b"declared", 8)
        })
        .collect();
    let mut store = MockMetadataStore::new();
    store
        .expect_claim_due_uploads()
        .times(1)
        .returning(move |_, _, _| Ok(due.clone()));
    store
        .expect_reject_upload()
        .times(6)
        .returning(|_, _| Ok(()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    // The most in flight so far, for reads to wait on.
    let (reached, watch) = tokio::sync::watch::channel(0usize);
    let mut east = blob("east");
    let (i, m) = (Arc::clone(&in_flight), Arc::clone(&most));
    east.expect_head().returning(move |_| {
        let now = i.fetch_add(1, Ordering::SeqCst) + 1;
        reached.send_replace(m.fetch_max(now, Ordering::SeqCst).max(now));
        Ok(Some(info(8)))
    });
    east.expect_get().returning(move |_| {
        let mut watch = watch.clone();
        Ok(Box::pin(futures_util::stream::once(async move {
            let _ = watch.wait_for(|most| *most >= 2).await;
            Ok(bytes::Bytes::from_static(b"wrong!!!"))
        })))
    });
    let i = Arc::clone(&in_flight);
    east.expect_delete().times(6).returning(move |_| {
        i.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    });
    let mut settings = Settings::new(Permissions::new(PREFIX, true));
    settings.verify_concurrency = 2;
    let svc = service_with(store, vec![east], settings);
    let results = tokio::time::timeout(std::time::Duration::from_secs(60), svc.verify_pending(10))
        .await
        .expect("verifications overlap")
        .expect("ran");
    assert_eq!(results.len(), 6);
    assert_eq!(most.load(Ordering::SeqCst), 2, "two at once, never more");
}

/// A staging object replaced while it is read (the store reports Changed)
/// is neither promoted nor rejected: the claim is released for later.
#[tokio::test]
async fn content_replaced_while_read_is_judged_later() {
    let declared = slot(b"declared content", 16);
    let mut store = MockMetadataStore::new();
    store.expect_complete_upload().never();
    store.expect_reject_upload().never();
    store.expect_release_upload().times(1).returning(|_| Ok(()));
    let mut east = blob("east");
    east.expect_head().returning(|_| Ok(Some(info(16))));
    east.expect_get().returning(|_| {
        Ok(Box::pin(futures_util::stream::iter(vec![
            Ok(bytes::Bytes::from_static(b"declared")),
            Err(BlobError::Changed),
        ])))
    });
    east.expect_promote().never();
    east.expect_delete().never();
    let svc = service(store, vec![east]);
    let verdict = svc.verify_claimed(&declared).await.expect("no error");
    assert_eq!(verdict, Verified::NotYet);
}

#[tokio::test]
async fn wrong_size_is_rejected_without_reading_the_object() {
    let declared = slot(b"abc", 3);
    let mut store = MockMetadataStore::new();
    store
        .expect_reject_upload()
        .times(1)
        .returning(|_, _| Ok(()));
    store.expect_complete_upload().never();
    let mut east = blob("east");
    east.expect_head().returning(|_| Ok(Some(info(4))));
    east.expect_get().never();
    east.expect_delete().times(1).returning(|_| Ok(()));
    let svc = service(store, vec![east]);
    assert!(
        matches!(svc.verify_claimed(&declared).await, Ok(Verified::Rejected(r)) if r.contains("expected 3 bytes"))
    );
}

#[tokio::test]
async fn valid_content_is_promoted_then_recorded() {
    let declared = slot(b"good", 4);
    let mut seq = mockall::Sequence::new();
    let mut store = MockMetadataStore::new();
    let mut east = blob("east");
    east.expect_promote()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, i| {
            assert_eq!(
                i.etag, "v1",
                "promotion is conditioned on the hashed version"
            );
            Ok(())
        });
    store
        .expect_complete_upload()
        .with(eq(declared.key.clone()), eq(4))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    east.expect_delete().never();
    let svc = service(store, vec![east]);
    let observed = Observed {
        size: 4,
        digest: digest(b"good"),
    };
    assert_eq!(
        svc.settle(&declared, &observed, &info(4))
            .await
            .expect("settled"),
        Verified::Valid
    );
}

#[tokio::test]
async fn content_swapped_after_hashing_is_not_promoted() {
    let declared = slot(b"good", 4);
    let mut store = MockMetadataStore::new();
    store.expect_complete_upload().never();
    store.expect_release_upload().times(1).returning(|_| Ok(()));
    let mut east = blob("east");
    east.expect_promote()
        .returning(|_, _| Err(tooltool_ports::BlobError::Changed));
    let svc = service(store, vec![east]);
    let observed = Observed {
        size: 4,
        digest: digest(b"good"),
    };
    assert_eq!(
        svc.settle(&declared, &observed, &info(4))
            .await
            .expect("settled"),
        Verified::NotYet
    );
}

#[tokio::test]
async fn missing_object_releases_the_claim() {
    let declared = slot(b"later", 5);
    let mut store = MockMetadataStore::new();
    store.expect_release_upload().times(1).returning(|_| Ok(()));
    let mut east = blob("east");
    east.expect_head().returning(|_| Ok(None));
    let svc = service(store, vec![east]);
    assert_eq!(
        svc.verify_claimed(&declared).await.expect("no error"),
        Verified::NotYet
    );
}

pub(super) fn request(files: Vec<DeclaredFile>) -> BatchRequest {
    BatchRequest {
        message: "why".into(),
        author_given: false,
        files,
    }
}

pub(super) fn declared(name: &str, content: &[u8], visibility: Visibility) -> DeclaredFile {
    DeclaredFile {
        filename: name.into(),
        digest: digest(content),
        size: content.len() as u64,
        visibility,
    }
}

#[tokio::test]
async fn batch_permissions_are_checked_before_anything_is_stored() {
    let mut store = MockMetadataStore::new();
    store.expect_create_batch().never();
    let svc = service(store, vec![blob("east")]);
    let mixed = vec![
        declared("a", b"a", Visibility::Public),
        declared("b", b"b", Visibility::Internal),
    ];
    for (principal, message) in [
        (
            Principal::anonymous(),
            "no permission to upload public files",
        ),
        (
            who(&["upload/public"]),
            "no permission to upload internal files",
        ),
        (
            who(&["upload/internal"]),
            "no permission to upload public files",
        ),
    ] {
        let e = svc
            .create_batch(&principal, request(mixed.clone()), None)
            .await
            .expect_err("denied");
        assert_eq!((e.kind(), e.message()), (ErrorKind::Denied, message));
    }
    let e = svc
        .create_batch(
            &who(&["upload/*"]),
            BatchRequest {
                author_given: true,
                ..request(mixed)
            },
            None,
        )
        .await
        .expect_err("author refused");
    assert_eq!(e.message(), "Author must NOT be specified for upload.");
}

#[tokio::test]
async fn batch_hands_out_put_urls_only_for_new_slots_in_the_chosen_region() {
    let mut store = MockMetadataStore::new();
    store.expect_create_batch().times(1).returning(|b| {
        assert_eq!(
            b.region.as_str(),
            "west",
            "the requested region receives the upload"
        );
        assert_eq!(b.author, "alice");
        let uploads = vec![PendingUpload {
            key: b.slots[1].clone(),
            size: b.files[1].size,
            region: b.region.clone(),
            expires: b.slot_expires,
        }];
        Ok(CreatedBatch {
            batch: BatchRecord {
                id: 7,
                uploaded: b.uploaded,
                author: b.author,
                message: b.message,
                files: vec![],
            },
            uploads,
        })
    });
    let mut west = blob("west");
    west.expect_presign_put()
        .times(1)
        .returning(|k, size, _| Ok(format!("put/{k}/{size}")));
    let svc = service(store, vec![blob("east"), west]);
    let created = svc
        .create_batch(
            &who(&["upload/public"]),
            request(vec![
                declared("old", b"old", Visibility::Public),
                declared("new", b"new", Visibility::Public),
            ]),
            Some(region("west")),
        )
        .await
        .expect("created");
    assert_eq!(created.put_urls.len(), 1);
    assert!(created.put_urls[&digest(b"new")].ends_with("/3"));
}

#[tokio::test]
async fn manage_needs_credentials_then_the_scope() {
    let mut store = MockMetadataStore::new();
    store.expect_patch_file().never();
    let svc = service(store, vec![blob("east")]);
    let d = digest(b"x");
    let e = svc
        .patch_file(&Principal::anonymous(), &d, vec![])
        .await
        .expect_err("anonymous");
    assert_eq!(e.kind(), ErrorKind::NotAuthenticated);
    let e = svc
        .patch_file(&who(&["upload/*"]), &d, vec![])
        .await
        .expect_err("no scope");
    assert_eq!(e.kind(), ErrorKind::Denied);
}

#[tokio::test]
async fn delete_instances_deletes_the_object_in_every_region() {
    let d = digest(b"gone");
    let mut store = MockMetadataStore::new();
    let record = file(b"gone", Visibility::Public, &[]);
    store
        .expect_patch_file()
        .returning(move |_, _| Ok(Some(record.clone())));
    let key = ObjectKey::File(d.clone());
    let mut east = blob("east");
    east.expect_delete()
        .with(eq(key.clone()))
        .times(1)
        .returning(|_| Ok(()));
    let mut west = blob("west");
    west.expect_delete()
        .with(eq(key))
        .times(1)
        .returning(|_| Ok(()));
    let svc = service(store, vec![east, west]);
    let f = svc
        .patch_file(&who(&["manage"]), &d, vec![PatchOp::DeleteInstances])
        .await
        .expect("patched");
    assert!(f.instances.is_empty());
}

#[tokio::test]
async fn upload_complete_reports_rejection_done_and_pending() {
    let rejected = digest(b"rejected");
    let done = digest(b"done");
    let waiting = slot(b"waiting", 7);
    let waiting_digest = waiting.key.digest().clone();
    let mut store = MockMetadataStore::new();
    let r = rejected.clone();
    store.expect_upload_state().with(eq(r)).returning(|_| {
        Ok(UploadState {
            file: Some(file(b"rejected", Visibility::Public, &[])),
            pending: vec![],
            rejection: Some("uploaded content does not match the declared sha512 digest".into()),
        })
    });
    store
        .expect_upload_state()
        .with(eq(done.clone()))
        .returning(|_| {
            Ok(UploadState {
                file: Some(file(b"done", Visibility::Public, &["east"])),
                ..UploadState::default()
            })
        });
    let w = waiting.clone();
    store
        .expect_upload_state()
        .with(eq(waiting_digest.clone()))
        .returning(move |_| {
            Ok(UploadState {
                file: Some(file(b"waiting", Visibility::Public, &[])),
                pending: vec![w.clone()],
                rejection: None,
            })
        });
    store
        .expect_upload_state()
        .returning(|_| Ok(UploadState::default()));
    // Another worker holds the waiting slot.
    store.expect_claim_upload().returning(|_, _, _| Ok(false));
    let svc = service(store, vec![blob("east")]);
    let e = svc.upload_complete(&rejected).await.expect_err("rejected");
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(e.message().starts_with("uploaded content does not match"));
    assert_eq!(
        svc.upload_complete(&done).await.expect("done"),
        UploadProgress::Done
    );
    assert_eq!(
        svc.upload_complete(&digest(b"unknown"))
            .await
            .expect("done"),
        UploadProgress::Done
    );
    assert_eq!(
        svc.upload_complete(&waiting_digest).await.expect("pending"),
        UploadProgress::Pending {
            retry_after_secs: 1
        }
    );
}

fn copy_source(domain: &str, location: &str) -> Option<CopySource> {
    Some(CopySource {
        domain: domain.to_owned(),
        location: location.to_owned(),
    })
}

/// A replication job claiming one file that only `east` has.
fn replication_store(f: &FileRecord, recorded: usize) -> MockMetadataStore {
    let mut store = MockMetadataStore::new();
    let claimed = f.clone();
    store
        .expect_claim_replication()
        .withf(|regions, _, _, _| regions.len() == 2)
        .times(1)
        .returning(move |_, _, _, _| Ok(vec![claimed.clone()]));
    store
        .expect_add_instance()
        .with(eq(f.digest.clone()), eq(region("west")))
        .times(recorded)
        .returning(|_, _| Ok(()));
    store
}

#[tokio::test]
async fn replication_streams_between_stores_of_different_domains() {
    let f = file(b"replicate", Visibility::Public, &["east"]);
    let store = replication_store(&f, 1);
    let mut east = blob("east");
    east.expect_copy_source()
        .returning(|| copy_source("s3 https://one", "bucket-east"));
    east.expect_get()
        .times(1)
        .returning(|_| Ok(body(b"replicate")));
    east.expect_put().never();
    let mut west = blob("west");
    west.expect_copy_source()
        .returning(|| copy_source("s3 https://other", "bucket-west"));
    west.expect_copy_from().never();
    west.expect_put()
        .withf(|_, size, _| *size == 9)
        .times(1)
        .returning(|_, _, _| Ok(()));
    let svc = service(store, vec![east, west]);
    let report = svc.replicate(10).await.expect("ran");
    assert_eq!(report.len(), 1);
    assert!(report[0].2.is_ok());
}

#[tokio::test]
async fn replication_copies_server_side_within_one_domain_and_records_only_success() {
    for copy_works in [true, false] {
        let f = file(b"replicate", Visibility::Public, &["east"]);
        let store = replication_store(&f, usize::from(copy_works));
        let mut east = blob("east");
        east.expect_copy_source()
            .returning(|| copy_source("s3 https://one", "bucket-east"));
        east.expect_get().never();
        let mut west = blob("west");
        west.expect_copy_source()
            .returning(|| copy_source("s3 https://one", "bucket-west"));
        west.expect_put().never();
        let digest = f.digest.clone();
        west.expect_copy_from()
            .withf(move |from, d, size| {
                from.location == "bucket-east" && *d == digest && *size == 9
            })
            .times(1)
            .returning(move |_, _, _| {
                if copy_works {
                    Ok(())
                } else {
                    Err(BlobError::unavailable("copy failed"))
                }
            });
        let svc = service(store, vec![east, west]);
        let report = svc.replicate(10).await.expect("ran");
        assert_eq!(report.len(), 1);
        assert_eq!(report[0].2.is_ok(), copy_works);
    }
}

#[tokio::test]
async fn sweep_drops_abandoned_slots_and_unowned_staging_objects() {
    let abandoned = slot(b"abandoned", 9);
    let stray = StagingKey::new(digest(b"stray"), "ffffffffffffffff").expect("valid");
    let owned = StagingKey::new(digest(b"owned"), "eeeeeeeeeeeeeeee").expect("valid");
    let mut store = MockMetadataStore::new();
    // Nonces whose window closed before now are forgotten.
    store
        .expect_forget_nonces()
        .withf(|before| *before == now())
        .times(1)
        .returning(|_| Ok(3));
    let a = abandoned.clone();
    store
        .expect_drop_abandoned_uploads()
        .withf(|before| *before == now() - Duration::hours(24))
        .returning(move |_| Ok(vec![a.clone()]));
    let s = stray.clone();
    store
        .expect_pending_upload()
        .with(eq(s))
        .returning(|_| Ok(None));
    let o = owned.clone();
    let owned_slot = PendingUpload {
        key: owned.clone(),
        ..slot(b"owned", 5)
    };
    store
        .expect_pending_upload()
        .with(eq(o))
        .returning(move |_| Ok(Some(owned_slot.clone())));
    let mut east = blob("east");
    let (s, o) = (stray.clone(), owned.clone());
    east.expect_list_staging()
        .withf(|before| *before == now() - Duration::hours(1))
        .returning(move |_| Ok(vec![s.clone(), o.clone()]));
    east.expect_delete()
        .with(eq(ObjectKey::from(abandoned.key.clone())))
        .times(1)
        .returning(|_| Ok(()));
    east.expect_delete()
        .with(eq(ObjectKey::from(stray.clone())))
        .times(1)
        .returning(|_| Ok(()));
    east.expect_delete()
        .with(eq(ObjectKey::from(owned.clone())))
        .never();
    let svc = service(store, vec![east]);
    assert_eq!(svc.sweep().await.expect("swept"), 2);
}

/// The heartbeat over HTTP, with a metadata store that cannot be reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_names_a_failing_metadata_store() {
    let mut store = MockMetadataStore::new();
    store.expect_ping().returning(|| {
        Err(tooltool_ports::MetadataError::unavailable(
            "connection refused",
        ))
    });
    let mut east = blob("east");
    east.expect_head().returning(|_| Ok(None));
    let svc = service(store, vec![east]);
    let app = tooltool_http::app(
        Arc::new(svc),
        tooltool_http::HttpConfig {
            public_url: "http://127.0.0.1:1".into(),
            max_json_body: 1 << 20,
            trust_proxy_headers: false,
            version: crate::version_info(),
            cors_origins: vec![],
            metrics: None,
            serve_metrics: false,
            client_script_url: tooltool_http::UPSTREAM_CLIENT_SCRIPT.into(),
            browser: None,
        },
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    let acceptor = poem::listener::TcpAcceptor::from_std(listener).expect("acceptor");
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
    let resp = reqwest::get(format!("http://{addr}/__heartbeat__"))
        .await
        .expect("get");
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["checks"]["database"], "error");
    assert_eq!(body["checks"]["storage:east"], "ok");
    assert_eq!(body["detail"], "unhealthy: database");
    assert!(
        !body.to_string().contains("connection refused"),
        "causes stay in the logs"
    );
}

#[tokio::test]
async fn regions_with_copies_but_no_configuration_are_reported() {
    let mut store = MockMetadataStore::new();
    store.expect_instance_regions().times(1).returning(|| {
        Ok(vec![
            (region("attic"), 3),
            (region("east"), 10),
            (region("west"), 7),
        ])
    });
    let s = service(store, vec![blob("east"), blob("west")]);
    assert_eq!(
        s.unconfigured_regions().await.expect("answers"),
        vec![(region("attic"), 3)],
        "only the region this process cannot serve, with its count"
    );
}
