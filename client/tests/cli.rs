//! The command line's local commands (no server): `add`, `list`,
//! `validate`, and the refusals of `fetch` before any request.

use std::process::Command;

fn client(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tooltool-client"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("runs")
}

#[test]
fn add_list_and_validate_as_tooltool_py() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.txt"), b"hello").expect("write");
    std::fs::write(dir.path().join("b.txt"), b"world").expect("write");
    let out = client(
        dir.path(),
        &["add", "--visibility", "public", "a.txt", "b.txt"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.path().join("manifest.tt")).expect("manifest");
    assert!(
        text.starts_with("[\n  {\n    \"filename\": \"a.txt\",\n    \"size\": 5,\n"),
        "{text}"
    );
    assert!(text.contains("\"visibility\": \"public\""), "{text}");

    let out = client(dir.path(), &["list"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "P\tV\ta.txt\nP\tV\tb.txt\n"
    );
    assert!(client(dir.path(), &["validate"]).status.success());

    // Adding the same file again changes nothing and says so by its status.
    let out = client(dir.path(), &["add", "a.txt"]);
    assert!(!out.status.success());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("manifest.tt")).expect("manifest"),
        text
    );

    std::fs::write(dir.path().join("b.txt"), b"WORLD").expect("write");
    std::fs::remove_file(dir.path().join("a.txt")).expect("rm");
    let out = client(dir.path(), &["list"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "-\t-\ta.txt\nP\t-\tb.txt\n"
    );
    assert!(!client(dir.path(), &["validate"]).status.success());
}

#[test]
fn refusals_are_one_line_and_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = client(dir.path(), &["fetch", "--url", "http://127.0.0.1:9/"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: cannot read the manifest manifest.tt"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    std::fs::write(dir.path().join("manifest.tt"), "[]").expect("write");
    std::fs::write(dir.path().join("auth"), "{\"clientId\": \"x\"}").expect("write");
    let out = client(
        dir.path(),
        &[
            "fetch",
            "--url",
            "http://127.0.0.1:9/",
            "--authentication-file",
            "auth",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(
            "error: auth: the authentication file is JSON without clientId and accessToken"
        ),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let out = client(
        dir.path(),
        &["change-visibility", "--url", "http://127.0.0.1:9/"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--digest"));
    let out = client(dir.path(), &["upload", "--url", "http://127.0.0.1:9/"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--message"));
}
