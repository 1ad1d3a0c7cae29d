//! Storage failures against real adapters: the service on SQLite with two
//! local regions, each behind the fault-injecting wrapper of the ports'
//! contract kit. Every fault of verification and replication must leave
//! nothing recorded that is not true (no instance without its object, no
//! rejection of content that was only misread), be reported as retryable,
//! and the same work must succeed once the fault is gone.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tooltool_domain::{ObjectKey, Permissions, RegionName, UrlSigner};
use tooltool_fs::FsStore;
use tooltool_ports::contract::faulty::{Fault, Faulty, Op};
use tooltool_ports::contract::{metadata::batch_of_one, t0};
use tooltool_ports::{BlobStore, Clock, ErrorKind, MetadataStore, NoMetrics, PendingUpload};
use tooltool_sqlite::SqliteStore;

use super::{PREFIX, body};
use crate::service::{Service, Settings, Verified};

const CONTENT: &str = "bytes that storage will fumble";

struct Settable(Mutex<DateTime<Utc>>);

impl Clock for Settable {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock")
    }
}

struct World {
    _dir: tempfile::TempDir,
    service: Service,
    store: Arc<SqliteStore>,
    clock: Arc<Settable>,
    /// The wrappers, east then west, and the stores they wrap.
    faulty: [Arc<Faulty>; 2],
    inner: [Arc<dyn BlobStore>; 2],
    slot: PendingUpload,
}

impl World {
    /// A declared upload in `east` whose bytes are in its staging object.
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(SqliteStore::in_memory().expect("sqlite"));
        let clock = Arc::new(Settable(Mutex::new(t0())));
        let region = |name: &str| -> Arc<dyn BlobStore> {
            let name = RegionName::parse(name).expect("region");
            Arc::new(
                FsStore::new(
                    name.clone(),
                    dir.path().join(name.as_str()),
                    UrlSigner::new(&name, "http://t", b"a secret of at least thirty-two bytes"),
                )
                .expect("fs store"),
            )
        };
        let inner = [region("east"), region("west")];
        let faulty = inner.clone().map(|s| Arc::new(Faulty::new(s).streamed()));
        let service = Service::new(
            store.clone(),
            faulty
                .iter()
                .map(|f| f.clone() as Arc<dyn BlobStore>)
                .collect(),
            clock.clone(),
            Arc::new(NoMetrics),
            Settings::new(Permissions::new(PREFIX, true)),
        );
        let created = store
            .create_batch(batch_of_one("faults", "f.bin", CONTENT))
            .await
            .expect("batch");
        let slot = created.uploads[0].clone();
        inner[0]
            .put(
                &ObjectKey::Staging(slot.key.clone()),
                CONTENT.len() as u64,
                body(CONTENT.as_bytes()),
            )
            .await
            .expect("staged");
        Self {
            _dir: dir,
            service,
            store,
            clock,
            faulty,
            inner,
            slot,
        }
    }

    fn advance(&self, by: chrono::Duration) {
        *self.clock.0.lock().expect("clock") += by;
    }

    /// The regions the store records a copy in.
    async fn instances(&self) -> Vec<String> {
        self.store
            .get_file(self.slot.key.digest())
            .await
            .expect("read")
            .map(|f| f.instances.iter().map(|r| r.as_str().to_owned()).collect())
            .unwrap_or_default()
    }

    async fn final_object_in(&self, region: usize) -> bool {
        self.inner[region]
            .head(&ObjectKey::File(self.slot.key.digest().clone()))
            .await
            .expect("head")
            .is_some()
    }
}

/// Verification meets one fault: it reports a retryable failure, records
/// nothing (no instance, no rejection: the slot is still pending and its
/// bytes still staged), and succeeds when tried again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_survives_every_storage_fault() {
    let cases = [
        (Op::Head, Fault::Fail),
        (Op::Get, Fault::Fail),
        (Op::Get, Fault::Break),
        (Op::Get, Fault::ShortRead(5)),
        (Op::Promote, Fault::Fail),
    ];
    for (op, fault) in cases {
        let w = World::new().await;
        w.faulty[0].inject(op, fault);
        let err = w
            .service
            .verify_slot(&w.slot)
            .await
            .expect_err("the fault is reported");
        assert_eq!(
            err.kind(),
            ErrorKind::Unavailable,
            "{op:?} {fault:?}: {err}"
        );
        let state = w
            .store
            .upload_state(w.slot.key.digest())
            .await
            .expect("state");
        assert_eq!(state.pending.len(), 1, "{op:?} {fault:?}: the slot stays");
        assert_eq!(state.rejection, None, "{op:?} {fault:?}: nothing rejected");
        assert!(w.instances().await.is_empty(), "{op:?} {fault:?}");
        assert!(
            !w.final_object_in(0).await,
            "{op:?} {fault:?}: nothing promoted"
        );
        assert_eq!(
            w.service.verify_slot(&w.slot).await.expect("healed"),
            Verified::Valid,
            "{op:?} {fault:?}: the next attempt verifies"
        );
        assert_eq!(w.instances().await, ["east"], "{op:?} {fault:?}");
        assert!(w.final_object_in(0).await);
    }
}

/// A slow store only makes verification slower.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_of_a_slow_stream_completes() {
    let w = World::new().await;
    w.faulty[0].inject(Op::Get, Fault::Slow(Duration::from_millis(200)));
    assert_eq!(
        w.service.verify_slot(&w.slot).await.expect("verified"),
        Verified::Valid
    );
}

/// `upload/complete` meeting a storage fault answers a retryable error,
/// never a 400 that tells the client its upload was wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_complete_reports_a_misread_as_retryable() {
    let w = World::new().await;
    w.faulty[0].inject(Op::Get, Fault::ShortRead(1));
    let err = w
        .service
        .upload_complete(w.slot.key.digest())
        .await
        .expect_err("retryable");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(matches!(
        w.service.upload_complete(w.slot.key.digest()).await,
        Ok(tooltool_ports::UploadProgress::Done)
    ));
}

/// Replication meets one fault (reading the source, or writing the
/// target): the target gets no instance and no object, and the next run
/// after the lease copies it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_survives_every_storage_fault() {
    let cases = [
        (0, Op::Get, Fault::Fail),
        (0, Op::Get, Fault::Break),
        (0, Op::Get, Fault::ShortRead(5)),
        (1, Op::Put, Fault::Fail),
        (1, Op::Put, Fault::ShortRead(5)),
        (1, Op::Put, Fault::Break),
    ];
    for (region, op, fault) in cases {
        let w = World::new().await;
        assert_eq!(
            w.service.verify_slot(&w.slot).await.expect("verified"),
            Verified::Valid
        );
        w.faulty[region].inject(op, fault);
        let report = w.service.replicate(10).await.expect("replication ran");
        assert_eq!(report.len(), 1, "{op:?} {fault:?}");
        let err = report[0].2.as_ref().expect_err("the fault is reported");
        assert_eq!(
            err.kind(),
            ErrorKind::Unavailable,
            "{op:?} {fault:?}: {err}"
        );
        assert_eq!(w.instances().await, ["east"], "{op:?} {fault:?}");
        assert!(
            !w.final_object_in(1).await,
            "{op:?} {fault:?}: nothing partial in west"
        );
        w.advance(chrono::Duration::hours(1));
        let report = w.service.replicate(10).await.expect("replication ran");
        assert!(
            report.len() == 1 && report[0].2.is_ok(),
            "{op:?} {fault:?}: {report:?}"
        );
        assert_eq!(w.instances().await, ["east", "west"], "{op:?} {fault:?}");
        assert!(w.final_object_in(1).await);
    }
}
