//! Why an attempt failed, as one line a person can act on: which file,
//! which URL (never its signature), what the server said; and whether it
//! may pass (retried) or not.

use std::time::Duration;

use futures_util::StreamExt as _;

use crate::manifest::FileRecord;

/// Why an attempt failed: for good, or for now (with the server's
/// `X-Retry-After`, when it gave one).
pub enum Failure {
    Final(String),
    Transient(String, Option<Duration>),
}

impl Failure {
    pub fn transient(record: &FileRecord, url: &str, e: reqwest::Error) -> Self {
        let e = e.without_url();
        Self::Transient(
            format!("{}: {}: {e}", record.filename, without_query(url)),
            None,
        )
    }

    /// A response that is neither the 302 nor the bytes: its status and
    /// the server's sentence (`detail` of the error shape, when it is one).
    pub async fn of_response(record: &FileRecord, url: &str, resp: reqwest::Response) -> Self {
        let status = resp.status();
        let after = crate::retry::server_delay(resp.headers());
        let text = first_kib(resp).await;
        let detail = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["detail"].as_str().map(str::to_owned))
            .unwrap_or_else(|| text.chars().take(200).collect::<String>().trim().to_owned());
        let line = format!(
            "{}: {} answered {status}{}",
            record.filename,
            without_query(url),
            if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            }
        );
        if status.is_server_error()
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || status == reqwest::StatusCode::CONFLICT
        {
            Self::Transient(line, after)
        } else {
            Self::Final(line)
        }
    }
}

/// The start of an error response's body: an error page is read for its
/// first KiB only, however large the server (or a proxy) made it.
async fn first_kib(resp: reqwest::Response) -> String {
    let mut body = resp.bytes_stream();
    let mut bytes = Vec::new();
    while let Some(Ok(chunk)) = body.next().await {
        bytes.extend_from_slice(&chunk[..chunk.len().min(1024 - bytes.len())]);
        if bytes.len() >= 1024 {
            break;
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A URL as it may be shown: without its query (signatures live there).
pub fn without_query(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_owned()
}
