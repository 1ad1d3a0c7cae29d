//! What the binary's tests share: running a command of it, and a server
//! process whose log lines tests wait for.

#![allow(dead_code)] // each test crate uses part of it

use std::io::BufRead;
use std::process::{Child, Command, Output};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

pub fn tooltool(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tooltool"));
    cmd.args(args);
    // Keep the caller's configuration out of the test.
    for var in [
        "LISTEN",
        "PORT",
        "PUBLIC_URL",
        "DATA_DIR",
        "LOCAL_REGIONS",
        "JWT_SECRET",
        "JWT_PUBLIC_KEY",
        "MAX_FILE_SIZE",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The binary serving on a free port, its log lines collected as they
/// come, so that tests wait for what it says (that it serves, that it
/// shuts down) instead of sleeping.
pub struct Server {
    pub child: Child,
    pub url: String,
    lines: Arc<Mutex<Vec<String>>>,
    said: mpsc::Receiver<String>,
}

impl Server {
    /// Starts the server with `env`, and returns once it says it serves.
    pub fn start(data: &str, env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tooltool"));
        cmd.env("DATA_DIR", data)
            .env("LISTEN", format!("127.0.0.1:{port}"))
            .env_remove("PUBLIC_URL")
            .env_remove("LOG_LEVEL")
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null());
        cmd.envs(env.iter().copied());
        let mut child = cmd.spawn().expect("server starts");
        let stderr = child.stderr.take().expect("piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tell, said) = mpsc::channel();
        let kept = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                kept.lock().expect("lines").push(line.clone());
                let _ = tell.send(line);
            }
        });
        let server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            lines,
            said,
        };
        // Logged once the listener is bound, so connections are accepted.
        server.wait_for("tooltool serving");
        server
    }

    /// Blocks until the server logs a line containing `text`.
    pub fn wait_for(&self, text: &str) {
        loop {
            match self.said.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.contains(text) => return,
                Ok(_) => {}
                Err(e) => panic!("the server never said {text:?} ({e}):\n{}", self.logs()),
            }
        }
    }

    /// Everything the server logged so far.
    pub fn logs(&self) -> String {
        self.lines.lock().expect("lines").join("\n")
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A byte stream fed from a channel (a client that sends when told to).
pub fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// A bearer token holding every scope, minted by the binary for `data`.
pub fn all_scopes_token(data: &str) -> String {
    all_scopes_token_with(&[("DATA_DIR", data)])
}

/// A bearer token holding every scope, minted by the binary with `env`
/// (e.g. `JWT_SECRET` for servers that share it).
pub fn all_scopes_token_with(env: &[(&str, &str)]) -> String {
    let out = tooltool(
        &[
            "token",
            "--sub",
            "u",
            "--scope",
            "project:releng:services/tooltool/api/*",
        ],
        env,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// Declares `content` as the public file `name` of a new batch on the
/// server at `base`: its digest and signed PUT URL.
pub async fn declare(base: &str, token: &str, name: &str, content: &[u8]) -> (String, String) {
    let digest = {
        let mut h = tooltool_domain::ContentHasher::new();
        h.update(content);
        h.finish().digest.to_string()
    };
    let batch: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/upload"))
        .bearer_auth(token)
        .json(&serde_json::json!({"message": "m", "files": {name: {
            "size": content.len(), "digest": digest, "algorithm": "sha512", "visibility": "public"}}}))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let put_url = batch["result"]["files"][name]["put_url"]
        .as_str()
        .unwrap_or_else(|| panic!("a put_url for {name}: {batch}"))
        .to_owned();
    (digest, put_url)
}
