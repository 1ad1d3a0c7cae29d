//! A full disk, for real: small tmpfs file systems (mounting needs root,
//! as CI runs; elsewhere these tests fail saying so). Storage full: the
//! PUT is 507 in the error shape, nothing partial is left, the heartbeat
//! names the region, and the same PUT succeeds once there is room again.
//! Database full: the embedded store's writes are `OutOfSpace`, its ping
//! fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use tooltool_ports::{MetadataError, MetadataStore};
use tooltool_tests::{batch_body, put, put_url, spawn_with};

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs failed: these tests need root (CI runs as root)"
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system up to `leave` bytes with `filler`.
    fn fill(&self, leave: u64) -> PathBuf {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(self.path())
            .output()
            .expect("df");
        let available: u64 = String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df's available bytes");
        let filler = self.path().join("filler");
        let size = usize::try_from(available.saturating_sub(leave)).expect("small");
        std::fs::write(&filler, vec![0u8; size]).expect("fill");
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test]
async fn a_full_storage_answers_507_keeps_nothing_and_fails_the_heartbeat() {
    let disk = Tmpfs::mount("16m");
    let objects = disk.path().join("objects");
    let regions = format!("local:{}", objects.display());
    let app = spawn_with(&["--local-regions", &regions]).await;
    let token = app.token("filler@example.com", &["upload/public"]);
    assert_eq!(app.get("__heartbeat__").await.status(), 200);

    let content = vec![7u8; 1 << 20];
    let batch = app
        .create_batch(
            &token,
            &batch_body("fill", &[("big.bin", &content, "public")]),
            None,
        )
        .await;
    let url = put_url(&batch, "big.bin");
    let filler = disk.fill(64 << 10);

    let resp = put(&url, &content).await;
    assert_eq!(resp.status(), 507);
    let body: serde_json::Value = resp.json().await.expect("JSON");
    assert_eq!(body["error"]["name"], "507 Insufficient Storage");
    assert_eq!(body["detail"], tooltool_ports::OUT_OF_SPACE_MESSAGE);
    let left: Vec<String> = tooltool_tests::files_under(&objects);
    assert!(left.is_empty(), "nothing partial is kept: {left:?}");

    let heartbeat = app.get("__heartbeat__").await;
    assert_eq!(heartbeat.status(), 503);
    let text = heartbeat.text().await.expect("text");
    assert!(text.contains(r#""storage:local":"error""#), "{text}");

    std::fs::remove_file(filler).expect("make room");
    assert_eq!(put(&url, &content).await.status(), 200, "room again");
    assert_eq!(app.get("__heartbeat__").await.status(), 200);
}

#[tokio::test]
async fn a_full_database_refuses_writes_as_out_of_space_and_fails_its_ping() {
    let disk = Tmpfs::mount("8m");
    let store =
        tooltool_sqlite::SqliteStore::open(&disk.path().join("tooltool.sqlite3")).expect("open");
    store.ping().await.expect("room at first");
    let _filler = disk.fill(0);
    let mut refused = None;
    // Pages already allocated may take a few batches before a write needs
    // a new one.
    for i in 0..200 {
        let batch = tooltool_ports::contract::metadata::batch_of_one(
            &format!("batch {i}"),
            &format!("file-{i}.bin"),
            &format!("content {i}"),
        );
        if let Err(e) = store.create_batch(batch).await {
            refused = Some(e);
            break;
        }
    }
    assert!(
        matches!(refused, Some(MetadataError::OutOfSpace(_))),
        "{refused:?}"
    );
    assert!(matches!(
        store.ping().await,
        Err(MetadataError::OutOfSpace(_))
    ));
}
