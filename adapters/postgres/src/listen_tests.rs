//! The change feed on a real database: another process's writes are
//! reported, a killed listening session is reported as an interruption at
//! once and listens again, and the feed stops with its sink.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tooltool_domain::{Digest, PatchOp, RegionName, Visibility};
use tooltool_ports::{FileChanges, FileRecord, ImportedBatch, MetadataStore, WhenTaken};

use crate::testing::{sessions_named, terminate_sessions};
use crate::{PgOptions, PgStore};

/// What the store told, in order: changes of `watched` only, since the
/// channel is the database's (other tests' schemas notify on it too).
struct Recorder(Mutex<Vec<String>>, Digest);

impl Recorder {
    fn said(&self) -> Vec<String> {
        self.0.lock().expect("lock").clone()
    }

    /// Waits (up to 10 s) until the `n`th event (from 1) is `event`.
    async fn wait(&self, n: usize, event: &str) {
        for _ in 0..2000 {
            let said = self.said();
            if said.len() >= n {
                assert_eq!(said[n - 1], event, "events so far: {said:?}");
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("no event {n} ({event}); events so far: {:?}", self.said());
    }
}

impl FileChanges for Recorder {
    fn changed(&self, digest: &Digest) {
        if *digest != self.1 {
            return;
        }
        self.0
            .lock()
            .expect("lock")
            .push(format!("changed {}", &digest.as_str()[..8]));
    }
    fn interrupted(&self) {
        self.0.lock().expect("lock").push("interrupted".into());
    }
    fn watching(&self) {
        self.0.lock().expect("lock").push("watching".into());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_processes_changes_are_reported_across_a_killed_session() {
    let (url, schema) = crate::testing::fresh_schema().await;
    let name = format!("lt{schema}");
    let url = format!("{url}&application_name={name}");
    let options = PgOptions::default();
    let connect = || PgStore::connect(&url, &options, Duration::from_secs(5));
    let (watched, other) = (connect().await.expect("a"), connect().await.expect("b"));
    // A digest no other test uses.
    let digest = {
        use std::hash::{BuildHasher, RandomState};
        let seed = RandomState::new().hash_one(&schema).to_le_bytes();
        let bytes: [u8; 64] = std::array::from_fn(|i| seed[i % 8]);
        Digest::from_bytes(&bytes)
    };
    let recorder = Arc::new(Recorder(Mutex::default(), digest.clone()));
    let sink: Arc<dyn FileChanges> = recorder.clone();
    watched.watch_files(Arc::downgrade(&sink));
    recorder.wait(1, "watching").await;

    // The other process imports a file with a copy, then makes it internal.
    let file = FileRecord {
        digest: digest.clone(),
        size: 3,
        visibility: Visibility::Public,
        instances: vec![RegionName::parse("local").expect("region")],
    };
    let batch = ImportedBatch {
        id: 1,
        uploaded: Utc::now(),
        author: "a".into(),
        message: "m".into(),
        files: vec![("f".into(), file)],
    };
    other
        .import_batch(batch, WhenTaken::Refuse)
        .await
        .expect("import");
    let short = format!("changed {}", &digest.as_str()[..8]);
    recorder.wait(2, &short).await;
    other
        .patch_file(&digest, vec![PatchOp::SetVisibility(Visibility::Internal)])
        .await
        .expect("patch");
    recorder.wait(3, &short).await;

    // The listening session is killed: reported at once, then it listens again.
    let listener = format!("{name}{}", crate::listen::APPLICATION_SUFFIX);
    assert_eq!(sessions_named(&listener).await, 1, "one listening session");
    assert_eq!(terminate_sessions(&listener).await, 1);
    recorder.wait(4, "interrupted").await;
    recorder.wait(5, "watching").await;
    other
        .patch_file(&digest, vec![PatchOp::DeleteInstances])
        .await
        .expect("patch");
    recorder.wait(6, &short).await;

    // Without its sink the feed stops and its session closes.
    drop(sink);
    drop(recorder);
    for _ in 0..400 {
        if sessions_named(&listener).await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the listening session outlived its sink");
}
