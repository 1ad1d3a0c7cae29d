//! A real S3-compatible store for tests and benchmarks (feature
//! `testing`): one Garage node, or a cluster of nodes whose nodes can be
//! killed and restarted, on loopback, in a fresh directory, with the
//! buckets asked for and one key allowed on all of them. Unlike s3s-fs it
//! stores multipart uploads of real keys, honours `If-Match` on reads and
//! copies, and is what people run in production.
//!
//! The binary is `$TOOLTOOL_GARAGE`, else `garage` on `PATH`, else the copy
//! `scripts/test` installs under `~/.cache/garage/bin`; a test that cannot
//! find it fails (it never skips).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Access key and secret imported into every node (Garage's formats:
/// `GK` + 24 hex digits, 64 hex digits).
pub const ACCESS_KEY: &str = "GK0123456789abcdef01234567";
pub const SECRET_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// The one region Garage signs for (its `s3_region`).
pub const SIGNING_REGION: &str = "garage";

/// A running node, or a cluster of nodes on loopback; stopped when
/// dropped, and when the process that started it ends (a static node of a
/// test process is never dropped).
pub struct Garage {
    /// `http://127.0.0.1:<port>` of the first node's S3 API, the one
    /// tooltool is pointed at (the other nodes hold replicas).
    pub endpoint: String,
    nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

/// One node process (when running) and its files, which outlive it so
/// that it can be restarted with its data.
struct Node {
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// `id@address`, learnt once it first runs (asking needs it running).
    address: String,
}

impl std::fmt::Debug for Garage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Garage")
            .field("endpoint", &self.endpoint)
            .field("nodes", &self.nodes.len())
            .finish_non_exhaustive()
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.stop("TERM");
        }
    }
}

/// Runs the node under a shell that stops it when its parent (this
/// process) is gone or when it is told to stop (TERM: gracefully; USR1:
/// SIGKILL, a crash), so no node outlives a test.
const WATCH: &str = r#""$0" -c "$1" server & node=$!
trap 'kill $node; exit 0' TERM
trap 'kill -9 $node; exit 0' USR1
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

/// Runs `garage <args>` with `config`; its output, or its error.
fn try_cli(config: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(binary())
        .arg("-c")
        .arg(config)
        .args(args)
        .output()
        .expect("garage command");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Runs `garage <args>` with `config`, asserting success; its output.
fn cli(config: &Path, args: &[&str]) -> String {
    try_cli(config, args).unwrap_or_else(|e| panic!("garage {}: {e}", args.join(" ")))
}

/// Polls `done` every 100 ms for up to `secs` seconds.
fn wait_for(secs: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if done() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Node {
    /// Starts (or restarts) the node's process; `Err(log)` when it exits
    /// before it answers (e.g. a port taken meanwhile).
    fn run(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let child = Command::new("sh")
            .arg("-c")
            .arg(WATCH)
            .arg(binary())
            .arg(&self.config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("garage server");
        self.child = Some(child);
        let mut exited = false;
        let up = wait_for(30, || {
            exited = self
                .child
                .as_mut()
                .is_some_and(|c| c.try_wait().ok().flatten().is_some());
            exited || try_cli(&self.config, &["status"]).is_ok()
        });
        if up && !exited {
            Ok(())
        } else {
            // A node that never answered is stopped, not left running.
            self.stop("TERM");
            Err(std::fs::read_to_string(&self.log).unwrap_or_default())
        }
    }

    /// Signals the watching shell (`TERM` or `USR1`, see [`WATCH`]) and
    /// waits for it.
    fn stop(&mut self, signal: &str) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
        }
    }

    /// The node's id, as `garage status` lists it (its first 16 digits).
    fn short_id(&self) -> &str {
        self.address.get(..16).unwrap_or_default()
    }
}

impl Garage {
    /// Starts a node with `buckets`, answering once they accept requests.
    ///
    /// # Panics
    /// When the node does not start or refuses its setup.
    pub fn start(buckets: &[&str]) -> Self {
        Self::cluster(1, buckets)
    }

    /// Starts a cluster of `nodes` processes on loopback, every object
    /// stored on each of them (replication factor `nodes`, so with three a
    /// write or read needs two), each node in a zone of its own, with
    /// `buckets`; answers once they accept requests.
    ///
    /// # Panics
    /// When a node does not start or the cluster refuses its setup.
    pub fn cluster(nodes: usize, buckets: &[&str]) -> Self {
        // A port found free can be taken by another test process before
        // a node binds it; the node then exits, and a new cluster with new
        // ports is started.
        let mut last = String::new();
        for _ in 0..5 {
            match Self::spawn(nodes) {
                Ok(garage) => {
                    garage.set_up(buckets);
                    return garage;
                }
                Err(why) => last = why,
            }
        }
        panic!("Garage did not start: {last}");
    }

    /// The nodes on fresh ports, once each answers RPC; the log of one
    /// that exited.
    fn spawn(count: usize) -> Result<Self, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let secret: String = (0..32).map(|_| format!("{:02x}", rand_byte())).collect();
        let mut nodes = Vec::new();
        let mut endpoint = String::new();
        for i in 0..count {
            let root = dir.path().join(format!("node{i}"));
            std::fs::create_dir_all(&root).expect("node dir");
            let (rpc, s3, admin) = (free_port(), free_port(), free_port());
            if i == 0 {
                endpoint = format!("http://127.0.0.1:{s3}");
            }
            let config = root.join("garage.toml");
            std::fs::write(
                &config,
                format!(
                    r#"metadata_dir = "{root}/meta"
data_dir = "{root}/data"
db_engine = "sqlite"
replication_factor = {count}
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
                    root = root.display()
                ),
            )
            .expect("config");
            let mut node = Node {
                config,
                log: root.join("garage.log"),
                child: None,
                address: String::new(),
            };
            let started = node.run();
            if started.is_ok() {
                node.address = cli(&node.config, &["node", "id", "-q"]).trim().to_owned();
            }
            nodes.push(node);
            started?;
        }
        Ok(Self {
            endpoint,
            nodes,
            _dir: dir,
        })
    }

    /// Joins the nodes, gives each a zone of its own in the layout, then
    /// imports the key and creates `buckets` allowed to it.
    fn set_up(&self, buckets: &[&str]) {
        let first = &self.nodes[0].config;
        for node in &self.nodes[1..] {
            cli(first, &["node", "connect", &node.address]);
        }
        for (i, node) in self.nodes.iter().enumerate() {
            let id = node.address.split('@').next().unwrap_or_default();
            let zone = format!("dc{}", i + 1);
            cli(first, &["layout", "assign", "-z", &zone, "-c", "1G", id]);
        }
        cli(first, &["layout", "apply", "--version", "1"]);
        // The layout reaches the other nodes by gossip: until it has,
        // writes can miss their quorum.
        let mut last = String::new();
        let imported = wait_for(30, || {
            match try_cli(
                first,
                &[
                    "key", "import", "--yes", "-n", "tooltool", ACCESS_KEY, SECRET_KEY,
                ],
            ) {
                Ok(_) => true,
                Err(e) => {
                    last = e;
                    false
                }
            }
        });
        assert!(imported, "garage key import: {last}");
        for bucket in buckets {
            cli(first, &["bucket", "create", bucket]);
            cli(
                first,
                &[
                    "bucket", "allow", "--read", "--write", "--owner", bucket, "--key", "tooltool",
                ],
            );
        }
    }

    /// Kills node `i` (SIGKILL: a crash, nothing flushed); its data stays
    /// for [`Garage::restart`].
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].stop("USR1");
    }

    /// Starts node `i` again on its ports and data, once it answers.
    ///
    /// # Panics
    /// When it does not start.
    pub fn restart(&mut self, i: usize) {
        if let Err(log) = self.nodes[i].run() {
            panic!("Garage node {i} did not restart: {log}");
        }
        // Garage reconnects to a restarted peer by itself, but only after
        // its reconnection backoff (about 30 to 40 s here); tests ask the
        // running nodes to connect to it at once instead, as an operator
        // would.
        let address = &self.nodes[i].address;
        let running =
            (self.nodes.iter().enumerate()).filter(|(j, node)| *j != i && node.child.is_some());
        for (_, node) in running {
            cli(&node.config, &["node", "connect", address]);
        }
    }

    /// The first node's `garage status`, lower-cased, split at the list
    /// of failed nodes: (healthy part, failed part).
    fn status(&self) -> (String, String) {
        let text = try_cli(&self.nodes[0].config, &["status"])
            .unwrap_or_else(|e| e)
            .to_lowercase();
        match text.split_once("failed nodes") {
            Some((healthy, failed)) => (healthy.to_owned(), failed.to_owned()),
            None => (text, String::new()),
        }
    }

    /// Waits until the first node sees every node of the cluster up.
    ///
    /// # Panics
    /// When that takes longer than 30 seconds.
    pub fn wait_all_up(&self) {
        let mut last = (String::new(), String::new());
        let up = wait_for(30, || {
            last = self.status();
            last.0.contains("healthy nodes") && last.1.is_empty()
        });
        assert!(up, "the cluster did not come back: {last:?}");
    }

    /// Waits until the first node counts node `i` as failed: Garage
    /// notices a dead peer only after a few seconds, and until then waits
    /// on it (requests take that long to fail).
    ///
    /// # Panics
    /// When that takes longer than 30 seconds.
    pub fn wait_down(&self, i: usize) {
        let id = self.nodes[i].short_id().to_owned();
        let mut last = (String::new(), String::new());
        let down = wait_for(30, || {
            last = self.status();
            last.1.contains(&id)
        });
        assert!(down, "node {i} ({id}) is not seen as failed: {last:?}");
    }
}

/// A byte from the process's hasher seeds (the RPC secret only needs to be
/// unguessable for the life of a test node).
fn rand_byte() -> u8 {
    use std::hash::{BuildHasher, RandomState};
    (RandomState::new().hash_one(Instant::now()) & 0xff) as u8
}
