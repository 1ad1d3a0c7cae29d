//! Helpers of the client's black-box tests (tests/client*.rs).

use std::path::Path;
use std::time::Duration;

use tooltool_client::auth::Credentials;
use tooltool_client::fetch::Fetcher;
use tooltool_client::manifest::FileRecord;
use tooltool_client::retry::Retry;

use crate::{TestApp, sha512_hex};

/// A manifest entry for `content` under `name`.
pub fn record(name: &str, content: &[u8]) -> FileRecord {
    FileRecord {
        filename: name.into(),
        size: content.len() as u64,
        algorithm: "sha512".into(),
        digest: sha512_hex(content),
        unpack: false,
        version: None,
        visibility: None,
    }
}

/// `len` bytes that differ with `seed`.
pub fn content(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Retries that give up fast.
pub fn fast_retry(attempts: u32) -> Retry {
    Retry {
        attempts,
        base: Duration::from_millis(10),
        max: Duration::from_millis(50),
    }
}

/// A fetcher of `app` with `credentials`, retrying twice at most.
pub fn fetcher(app: &TestApp, credentials: Credentials) -> Fetcher {
    let mut f = Fetcher::new(std::slice::from_ref(&app.url), credentials, None).expect("fetcher");
    f.retry = fast_retry(2);
    f
}

/// The names in `dir`, sorted.
pub fn only_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// How many requests of operation `route` the server answered with
/// `status`, from its `/metrics`.
pub async fn requests(app: &TestApp, route: &str, status: u16) -> u64 {
    let text = app.get("metrics").await.text().await.expect("metrics text");
    let prefix = format!(r#"tooltool_http_requests_total{{route="{route}",status="{status}"}} "#);
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.trim().parse().expect("a count"))
}
