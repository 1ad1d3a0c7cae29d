//! The `tooltool-client` binary against the real server: two processes
//! sharing one cache, unpacking, purge, bad credentials, and manifests
//! `tooltool.py` wrote (its fixture, and `tooltool.py` itself when
//! `TOOLTOOL_PY` names a copy).

use std::path::Path;
use std::process::Output;

use tooltool_tests::client::{content, only_files};
use tooltool_tests::{TestApp, spawn_app};

const UPLOAD: &str = "upload/*";

/// The client binary, built beside this test (`cargo build -p
/// tooltool-client`; `scripts/test` builds every binary of the workspace).
fn binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let client = dir.join("tooltool-client");
    assert!(
        client.is_file(),
        "{} is missing: build it with `cargo build --release -p tooltool-client`",
        client.display()
    );
    client
}

/// Runs the client in `dir` (on the blocking pool: the server under test
/// runs on this process's runtime).
async fn client(dir: &Path, args: &[&str]) -> Output {
    let mut command = std::process::Command::new(binary());
    command
        .current_dir(dir)
        .args(args)
        .env_remove("TASKCLUSTER_CLIENT_ID")
        .env_remove("TASKCLUSTER_ACCESS_TOKEN");
    tokio::task::spawn_blocking(move || command.output().expect("runs"))
        .await
        .expect("joined")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Files uploaded to `app` and a manifest of them written in `dir` by
/// the client's own `add`.
async fn uploaded_manifest(app: &TestApp, dir: &Path, files: &[(String, Vec<u8>)]) {
    let token = app.token("up@example.com", &[UPLOAD]);
    for (name, bytes) in files {
        app.upload(&token, name, bytes, "public").await;
        std::fs::write(dir.join(name), bytes).expect("write");
    }
    let mut args = vec!["add", "--visibility", "public"];
    args.extend(files.iter().map(|(n, _)| n.as_str()));
    let out = client(dir, &args).await;
    assert!(out.status.success(), "{}", stderr(&out));
    for (name, _) in files {
        std::fs::remove_file(dir.join(name)).expect("rm");
    }
}

/// Bytes each `name: downloaded, N bytes` line of `out` says.
fn downloaded(out: &Output) -> u64 {
    stderr(out)
        .lines()
        .filter_map(|l| l.split_once(": downloaded, "))
        .map(|(_, n)| {
            n.trim_end_matches(" bytes")
                .parse::<u64>()
                .expect("a count")
        })
        .sum()
}

/// Two jobs fetching one manifest into one cache at once: each file
/// crosses the network once (the other job waits on the entry's lock and
/// takes it from the cache), and both get every file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_cache_and_download_each_file_once() {
    let app = spawn_app().await;
    let work = tempfile::tempdir().expect("tempdir");
    let files: Vec<(String, Vec<u8>)> = (0..8)
        .map(|i| {
            (
                format!("part{i}.bin"),
                content(i, 2_000_000 + usize::from(i)),
            )
        })
        .collect();
    uploaded_manifest(&app, work.path(), &files).await;
    let manifest = work.path().join("manifest.tt");
    let cache = tempfile::tempdir().expect("tempdir");
    let (a, b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let (manifest, cache_dir) = (
        manifest.to_string_lossy().into_owned(),
        cache.path().to_string_lossy().into_owned(),
    );
    let args = [
        "fetch", "--url", &app.url, "-m", &manifest, "-c", &cache_dir, "-j", "4",
    ];
    let (out_a, out_b) = tokio::join!(client(a.path(), &args), client(b.path(), &args));
    assert!(out_a.status.success(), "{}", stderr(&out_a));
    assert!(out_b.status.success(), "{}", stderr(&out_b));
    let total: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();
    assert_eq!(
        downloaded(&out_a) + downloaded(&out_b),
        total,
        "each file downloaded once:\n{}\n{}",
        stderr(&out_a),
        stderr(&out_b)
    );
    for dir in [a.path(), b.path()] {
        for (name, bytes) in &files {
            assert_eq!(&std::fs::read(dir.join(name)).expect("read"), bytes);
        }
        // Nothing but the files: no partial or temporary names.
        let names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(only_files(dir), names);
    }
    // One line per file, in a log (standard error is not a terminal).
    assert_eq!(
        stderr(&out_a).lines().count(),
        files.len(),
        "{}",
        stderr(&out_a)
    );

    // purge -s with more than the disk has: everything goes, oldest first.
    let out = client(
        work.path(),
        &[
            "purge",
            "-c",
            &cache.path().to_string_lossy(),
            "-s",
            "1000000000",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).trim(),
        format!("purge: 8 files removed from {}", cache.path().display())
    );
    assert!(
        only_files(cache.path()).iter().all(|n| n.starts_with('.')),
        "{:?}",
        only_files(cache.path())
    );
    let out = client(work.path(), &["purge"]).await;
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).trim(),
        "error: purge needs the cache folder (-c)"
    );
}

/// `unpack: true` entries are unpacked once fetched, as tooltool.py does:
/// the old folder of that name replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_unpacks_what_the_manifest_marks() {
    let app = spawn_app().await;
    let work = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(work.path().join("clang/bin")).expect("mkdir");
    std::fs::write(work.path().join("clang/bin/clang"), "#!/bin/sh\necho 18\n").expect("write");
    let tar = std::process::Command::new("tar")
        .current_dir(work.path())
        .args(["czf", "clang.tar.gz", "clang"])
        .status()
        .expect("tar");
    assert!(tar.success());
    std::fs::remove_dir_all(work.path().join("clang")).expect("rm");
    let archive = std::fs::read(work.path().join("clang.tar.gz")).expect("read");
    let token = app.token("up@example.com", &[UPLOAD]);
    app.upload(&token, "clang.tar.gz", &archive, "public").await;
    let out = client(
        work.path(),
        &["add", "--visibility", "public", "--unpack", "clang.tar.gz"],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::remove_file(work.path().join("clang.tar.gz")).expect("rm");
    // An older version's folder, which must not survive.
    std::fs::create_dir_all(work.path().join("clang/old")).expect("mkdir");

    let out = client(work.path(), &["fetch", "--url", &app.url]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("clang.tar.gz: unpacked"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(work.path().join("clang/bin/clang")).expect("unpacked"),
        "#!/bin/sh\necho 18\n"
    );
    assert!(!work.path().join("clang/old").exists());
}

/// Bad credentials: one line naming the file and the server's words,
/// and a failing exit; nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_are_one_line_and_a_failing_exit() {
    let app = spawn_app().await;
    let work = tempfile::tempdir().expect("tempdir");
    let files = vec![("a.bin".to_owned(), content(3, 1000))];
    uploaded_manifest(&app, work.path(), &files).await;
    std::fs::write(work.path().join("token"), "not-a-token").expect("write");
    let out = client(
        work.path(),
        &["fetch", "--url", &app.url, "--authentication-file", "token"],
    )
    .await;
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: a.bin: ") && err.contains("401 Unauthorized"),
        "{err}"
    );
    assert_eq!(only_files(work.path()), ["manifest.tt", "token"]);
}

/// A manifest `tooltool.py` wrote is fetched as written; with
/// `TOOLTOOL_PY`, `tooltool.py` itself writes one, and validates what
/// the client fetched from a manifest the client wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_tooltool_py_writes_and_reads() {
    let app = spawn_app().await;
    let token = app.token("up@example.com", &[UPLOAD]);
    app.upload(&token, "café", b"world", "public").await;
    app.upload(&token, "clang.tar.zst", b"hello", "public")
        .await;
    let work = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        work.path().join("manifest.tt"),
        include_str!("../client/tests/fixtures/tooltool-py-add.tt"),
    )
    .expect("write");
    // The fixture's clang.tar.zst is marked unpack but is no archive: only
    // the other file is asked for by name, as scripts may.
    let out = client(work.path(), &["fetch", "--url", &app.url, "café"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(work.path().join("café")).expect("read"),
        b"world"
    );

    let Ok(tooltool_py) = std::env::var("TOOLTOOL_PY") else {
        return;
    };
    let python = |dir: &Path, args: &[&str]| {
        let out = std::process::Command::new("python3")
            .current_dir(dir)
            .arg(&tooltool_py)
            .args(args)
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "tooltool.py {args:?}: {}",
            stderr(&out)
        );
    };
    let fresh = tempfile::tempdir().expect("tempdir");
    std::fs::write(fresh.path().join("café"), b"world").expect("write");
    python(fresh.path(), &["add", "--visibility", "public", "café"]);
    std::fs::remove_file(fresh.path().join("café")).expect("rm");
    let out = client(fresh.path(), &["fetch", "--url", &app.url]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    python(fresh.path(), &["validate"]);
    // And the other way: the client's manifest, tooltool.py's fetch.
    let ours = tempfile::tempdir().expect("tempdir");
    std::fs::write(ours.path().join("clang.tar.zst"), b"hello").expect("write");
    let out = client(
        ours.path(),
        &["add", "--visibility", "public", "clang.tar.zst"],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::remove_file(ours.path().join("clang.tar.zst")).expect("rm");
    python(ours.path(), &["fetch", "--url", &app.url]);
    assert_eq!(
        std::fs::read(ours.path().join("clang.tar.zst")).expect("read"),
        b"hello"
    );
}
