//! `upload`, `change-visibility` and `delete`, through the generated API
//! client ([`crate::api`]): the batch is declared with `POST /upload`, new
//! files are PUT in parallel to the URLs the server hands out (its own
//! route for files above the storage's single-PUT limit, so nothing here
//! depends on the size), then `upload/complete` is followed until 202.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt as _;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};

use crate::api::{self, types};
use crate::auth::Credentials;
use crate::manifest::Manifest;
use crate::retry::{Attempt, Retry, server_delay};

/// How long an upload waits for the server to verify a file.
const VERIFY_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// One server, with the caller's credentials.
pub struct Server {
    api: api::Client,
    /// PUTs to signed URLs carry no credentials (the signature is the
    /// permission; a credential would leak to the storage).
    put: reqwest::Client,
    pub retry: Retry,
}

/// A generated call's failure as one line: the status and the server's
/// sentence when it answered with the error shape.
pub fn describe(e: &progenitor_client::Error<types::Problem>) -> String {
    match e {
        progenitor_client::Error::ErrorResponse(resp) => {
            format!("{}: {}", resp.error.name, resp.detail)
        }
        other => other.to_string(),
    }
}

impl Server {
    /// `base`: the server's URL; every call is signed with `credentials`.
    pub fn new(base: &str, credentials: Credentials) -> Result<Self, String> {
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(30))
                .user_agent(concat!("tooltool-client/", env!("CARGO_PKG_VERSION")))
        };
        let api_client = builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| e.to_string())?;
        let put = builder().build().map_err(|e| e.to_string())?;
        Ok(Self {
            api: api::Client::new_with_client(base.trim_end_matches('/'), api_client, credentials),
            put,
            retry: Retry::default(),
        })
    }

    /// Uploads the files of `manifest` (found in `dir`) as one batch.
    pub async fn upload(
        &self,
        manifest: &Manifest,
        dir: &Path,
        message: &str,
        region: Option<&str>,
        jobs: usize,
    ) -> Result<(), String> {
        let mut files = HashMap::new();
        for r in &manifest.records {
            let visibility = match r.visibility.as_deref() {
                Some("public") => types::VisibilityName::Public,
                Some("internal") => types::VisibilityName::Internal,
                _ => {
                    return Err(format!(
                        "{}: the manifest gives no visibility (add it with --visibility)",
                        r.filename
                    ));
                }
            };
            let digest = r
                .digest
                .parse()
                .map_err(|e| format!("{}: {e}", r.filename))?;
            files.insert(
                r.filename.clone(),
                types::DeclaredFileDoc {
                    algorithm: types::Algorithm::Sha512,
                    digest,
                    size: r.size,
                    visibility,
                },
            );
        }
        let message = message.parse().map_err(|e| format!("--message: {e}"))?;
        let body = types::UploadRequestDoc { files, message };
        let batch = self
            .api
            .create_batch(region, &body)
            .await
            .map_err(|e| format!("POST /upload: {}", describe(&e)))?
            .into_inner()
            .result;
        let puts: Vec<(String, String)> = batch
            .files
            .iter()
            .filter_map(|(name, f)| f.put_url.clone().map(|u| (name.clone(), u)))
            .collect();
        let new = puts.len();
        // Both steps stop at the first failure.
        futures_util::stream::iter(puts.into_iter().map(Ok))
            .try_for_each_concurrent(jobs, |(name, url)| async move {
                // Only files of the manifest are read: the answer's names
                // are the server's, and one naming another file (`../..`)
                // must not make us send it.
                let record = manifest
                    .records
                    .iter()
                    .find(|r| r.filename == name)
                    .ok_or_else(|| {
                        format!("{name:?}: the server asked for a file the manifest does not list")
                    })?;
                self.put_file(&dir.join(&record.filename), record.size, &url)
                    .await
                    .map_err(|e| format!("{name}: {e}"))
            })
            .await?;
        futures_util::stream::iter(manifest.records.iter().map(Ok))
            .try_for_each_concurrent(jobs, |r| async move {
                self.wait_verified(&r.digest)
                    .await
                    .map_err(|e| format!("{}: {e}", r.filename))
            })
            .await?;
        eprintln!(
            "uploaded batch {} ({} files, {new} new)",
            batch.id,
            manifest.records.len()
        );
        Ok(())
    }

    /// PUTs the file at `path` to a signed URL, streamed, retried whole.
    async fn put_file(&self, path: &Path, size: u64, url: &str) -> Result<(), String> {
        let shown = crate::failure::without_query(url);
        let mut attempt = Attempt::default();
        loop {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
                file,
                1 << 20,
            ));
            let sent = self
                .put
                .put(url)
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, size)
                .body(body)
                .send()
                .await;
            let (line, after) = match sent {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) if resp.status().is_client_error() => {
                    return Err(format!("PUT {shown} answered {}", resp.status()));
                }
                Ok(resp) => (
                    format!("PUT {shown} answered {}", resp.status()),
                    server_delay(resp.headers()),
                ),
                Err(e) => (format!("PUT {shown}: {}", e.without_url()), None),
            };
            match attempt.next(&self.retry, after) {
                Some(pause) => tokio::time::sleep(pause).await,
                None => return Err(line),
            }
        }
    }

    /// Follows `upload/complete` until the server says 202.
    async fn wait_verified(&self, digest: &str) -> Result<(), String> {
        let digest: types::UploadCompleteDigest = digest.parse().map_err(|e| format!("{e}"))?;
        let deadline = Instant::now() + VERIFY_DEADLINE;
        loop {
            match self.api.upload_complete(&digest).await {
                Ok(_) => return Ok(()),
                Err(progenitor_client::Error::ErrorResponse(resp))
                    if resp.status() == reqwest::StatusCode::CONFLICT =>
                {
                    let pause = server_delay(resp.headers())
                        .unwrap_or(Duration::from_secs(1))
                        .min(self.retry.max);
                    if Instant::now() + pause > deadline {
                        return Err(format!(
                            "not verified within {} minutes: {}",
                            VERIFY_DEADLINE.as_secs() / 60,
                            resp.detail
                        ));
                    }
                    tokio::time::sleep(pause).await;
                }
                Err(e) => return Err(format!("upload/complete: {}", describe(&e))),
            }
        }
    }

    /// `change-visibility`.
    pub async fn change_visibility(&self, digest: &str, visibility: &str) -> Result<(), String> {
        let visibility = match visibility {
            "public" => types::VisibilityName::Public,
            "internal" => types::VisibilityName::Internal,
            other => {
                return Err(format!(
                    "--visibility: {other:?} is neither public nor internal"
                ));
            }
        };
        let op = types::PatchOpDoc::SetVisibilityOp(types::PatchOpDocSetVisibilityOp {
            op: types::PatchOpDocSetVisibilityOpOp::SetVisibility,
            visibility,
        });
        self.patch(digest, op).await
    }

    /// `delete`: the file's stored copies (its records stay).
    pub async fn delete(&self, digest: &str) -> Result<(), String> {
        let op = types::PatchOpDoc::DeleteInstancesOp(types::PatchOpDocDeleteInstancesOp {
            op: types::PatchOpDocDeleteInstancesOpOp::DeleteInstances,
        });
        self.patch(digest, op).await
    }

    async fn patch(&self, digest: &str, op: types::PatchOpDoc) -> Result<(), String> {
        let param: types::PatchFileDigest = digest
            .parse()
            .map_err(|_| "--digest: not 128 lower-case hex digits".to_owned())?;
        self.api
            .patch_file(&param, &vec![op])
            .await
            .map(|_| ())
            .map_err(|e| describe(&e))
    }
}
