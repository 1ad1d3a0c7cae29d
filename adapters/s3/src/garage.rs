//! A real S3-compatible store for tests and benchmarks (feature
//! `testing`): one Garage node on loopback, in a fresh directory, with the
//! buckets asked for and one key allowed on all of them. Unlike s3s-fs it
//! stores multipart uploads of real keys, honours `If-Match` on reads and
//! copies, and is what people run in production.
//!
//! The binary is `$TOOLTOOL_GARAGE`, else `garage` on `PATH`, else the copy
//! `scripts/test` installs under `~/.cache/garage/bin`; a test that cannot
//! find it fails (it never skips).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Access key and secret imported into every node (Garage's formats:
/// `GK` + 24 hex digits, 64 hex digits).
pub const ACCESS_KEY: &str = "GK0123456789abcdef01234567";
pub const SECRET_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// The one region Garage signs for (its `s3_region`).
pub const SIGNING_REGION: &str = "garage";

/// A running node; stopped when dropped, and when the process that started
/// it ends (a static node of a test process is never dropped).
pub struct Garage {
    /// `http://127.0.0.1:<port>` of the S3 API.
    pub endpoint: String,
    child: Child,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for Garage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Garage")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        // TERM, which the watching shell passes on to the node.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// Runs the node under a shell that stops it when its parent (this
/// process) is gone or when it is told to stop, so no node outlives a test.
const WATCH: &str = r#""$0" -c "$1" server & node=$!
trap 'kill $node; exit 0' TERM
while kill -0 $PPID 2>/dev/null && kill -0 $node 2>/dev/null; do sleep 0.2; done
kill $node 2>/dev/null"#;

/// The Garage binary to run.
///
/// # Panics
/// When none is found: the tests that need it must not pass without it.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TOOLTOOL_GARAGE") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("garage"))
            .find(|p| p.is_file())
    });
    let cached = std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".cache/garage/bin/garage"))
        .filter(|p| p.is_file());
    on_path.or(cached).expect(
        "Garage is not installed: run scripts/test (it installs it), or \
         `cargo install garage@2.5.0 --locked --root ~/.cache/garage`, or set TOOLTOOL_GARAGE",
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Garage {
    /// Starts a node with `buckets`, answering once they accept requests.
    ///
    /// # Panics
    /// When the node does not start or refuses its setup.
    pub fn start(buckets: &[&str]) -> Self {
        // A port found free can be taken by another test process before
        // the node binds it; the node then exits, and a new one with new
        // ports is started.
        let mut last = String::new();
        for _ in 0..5 {
            match Self::spawn() {
                Ok(garage) => {
                    garage.set_up(buckets);
                    return garage;
                }
                Err(why) => last = why,
            }
        }
        panic!("Garage did not start: {last}");
    }

    /// A node on fresh ports, once it answers RPC; its log when it exited.
    fn spawn() -> Result<Self, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (rpc, s3, admin) = (free_port(), free_port(), free_port());
        let config = dir.path().join("garage.toml");
        let secret: String = (0..32).map(|_| format!("{:02x}", rand_byte())).collect();
        std::fs::write(
            &config,
            format!(
                r#"metadata_dir = "{root}/meta"
data_dir = "{root}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"
[s3_api]
s3_region = "{SIGNING_REGION}"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "127.0.0.1:{admin}"
"#,
                root = dir.path().display()
            ),
        )
        .expect("config");
        let log_path = dir.path().join("garage.log");
        let log = std::fs::File::create(&log_path).expect("log");
        let child = Command::new("sh")
            .arg("-c")
            .arg(WATCH)
            .arg(binary())
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("garage server");
        let mut garage = Self {
            endpoint: format!("http://127.0.0.1:{s3}"),
            child,
            config,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if garage.try_cli(&["status"]).is_ok() {
                return Ok(garage);
            }
            if garage.child.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
                return Err(std::fs::read_to_string(&log_path).unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The layout of one node, the key, and `buckets` allowed to it.
    fn set_up(&self, buckets: &[&str]) {
        let node = self.node_id();
        self.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        self.cli(&["layout", "apply", "--version", "1"]);
        self.cli(&[
            "key", "import", "--yes", "-n", "tooltool", ACCESS_KEY, SECRET_KEY,
        ]);
        for bucket in buckets {
            self.cli(&["bucket", "create", bucket]);
            self.cli(&[
                "bucket", "allow", "--read", "--write", "--owner", bucket, "--key", "tooltool",
            ]);
        }
    }

    /// Runs `garage <args>` against this node; its output, or its error.
    fn try_cli(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(binary())
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .output()
            .expect("garage command");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Runs `garage <args>` against this node, asserting success; its output.
    fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args)
            .unwrap_or_else(|e| panic!("garage {}: {e}", args.join(" ")))
    }

    /// The node's id (the part of `id@address` before the `@`).
    fn node_id(&self) -> String {
        let text = self.cli(&["node", "id", "-q"]);
        text.split('@').next().unwrap_or_default().trim().to_owned()
    }
}

/// A byte from the process's hasher seeds (the RPC secret only needs to be
/// unguessable for the life of a test node).
fn rand_byte() -> u8 {
    use std::hash::{BuildHasher, RandomState};
    (RandomState::new().hash_one(Instant::now()) & 0xff) as u8
}
