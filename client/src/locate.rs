//! Where each file can be downloaded from. When the server offers it, one
//! `POST /fetch` answers for the whole manifest (1024 digests a request):
//! each answer is a hint good for one attempt on that server while its URL
//! is fresh. Otherwise, and for every retry, `GET /sha512/<digest>` and its
//! 302, which every tooltool server answers (the original service has no
//! `POST /fetch`, and answers it 404 or 405).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use progenitor_client::ClientInfo as _;
use reqwest::StatusCode;

use crate::api::types;
use crate::failure::{Failure, without_query};
use crate::fetch::Fetcher;
use crate::manifest::FileRecord;

/// What one server said of one digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A signed URL to GET without credentials.
    Url(String),
    /// Why not, as `GET /sha512/<digest>` would have answered.
    Refused { status: StatusCode, detail: String },
}

struct Hint {
    base: usize,
    answer: Answer,
    fresh_until: Instant,
}

/// The answers of `POST /fetch`, each taken at most once.
#[derive(Default)]
pub struct Hints(Mutex<HashMap<String, Hint>>);

impl Hints {
    /// The answer for `digest` from server `base`, when it was given and
    /// its URL is still fresh; a retry finds nothing and asks again.
    pub fn take(&self, base: usize, digest: &str) -> Option<Answer> {
        let mut hints = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match hints.remove(digest) {
            Some(h) if h.base == base && Instant::now() < h.fresh_until => Some(h.answer),
            Some(h) if h.base != base => {
                hints.insert(digest.to_owned(), h);
                None
            }
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What one server said to `POST /fetch`.
enum Resolved {
    /// Each digest's answer, fresh until then.
    Answers(Vec<(String, Answer, Instant)>),
    /// The server has no such route (or does not understand it).
    NotOffered,
    /// It refused the caller (401, 403): its status and sentence.
    Refused(StatusCode, String),
    /// It could not answer now: said once, then each file is asked alone.
    Failed(String),
}

/// Digests in one `POST /fetch` (the server's bound).
const PER_REQUEST: usize = 1024;

/// A URL is used only while this much of its validity remains: a transfer
/// must start before the signature expires.
fn fresh_for(expires_in: u64) -> Duration {
    let valid = Duration::from_secs(expires_in);
    valid.saturating_sub((valid / 4).min(Duration::from_secs(10)))
}

impl Fetcher {
    /// Asks the servers in order for every record at once; the first that
    /// answers gives the hints. A server without `POST /fetch`, or one
    /// that fails, costs one request and nothing else: each file is then
    /// resolved on its own.
    pub async fn resolve_all(&self, records: &[&FileRecord]) -> Hints {
        let hints = Hints::default();
        if records.is_empty() {
            return hints;
        }
        for (base, api) in self.apis.iter().enumerate() {
            let answers = match self.resolve_on(api, records).await {
                Resolved::Answers(answers) => answers,
                // The credentials are refused: so would every file be, by
                // this server, without asking it again for each.
                Resolved::Refused(status, detail) => {
                    let fresh_until = Instant::now() + Duration::from_secs(3600);
                    records
                        .iter()
                        .map(|r| {
                            let detail = detail.clone();
                            (
                                r.digest.clone(),
                                Answer::Refused { status, detail },
                                fresh_until,
                            )
                        })
                        .collect()
                }
                Resolved::Failed(e) => {
                    eprintln!("warning: {e}; asking for each file instead");
                    continue;
                }
                Resolved::NotOffered => continue,
            };
            let mut map = hints
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (digest, answer, fresh_until) in answers {
                let hint = Hint {
                    base,
                    answer,
                    fresh_until,
                };
                map.insert(digest, hint);
            }
            break;
        }
        hints
    }

    async fn resolve_on(&self, api: &crate::api::Client, records: &[&FileRecord]) -> Resolved {
        let mut answers = Vec::with_capacity(records.len());
        for chunk in records.chunks(PER_REQUEST) {
            let body = chunk
                .iter()
                .map(|r| r.digest.parse())
                .collect::<Result<_, _>>();
            let body = match body {
                Ok(digests) => types::FetchRequestDoc { digests },
                Err(e) => return Resolved::Failed(format!("a digest of the manifest: {e}")),
            };
            let asked = Instant::now();
            let resolved = match api.resolve(self.region.as_deref(), &body).await {
                Ok(r) => r.into_inner().result,
                Err(e) => {
                    return match e.status().map(|s| s.as_u16()) {
                        // A server without the route, or one that does not
                        // understand it (another version, a proxy).
                        Some(400 | 404 | 405 | 415 | 501) => Resolved::NotOffered,
                        Some(code @ (401 | 403)) => Resolved::Refused(
                            StatusCode::from_u16(code).unwrap_or(StatusCode::FORBIDDEN),
                            match &e {
                                progenitor_client::Error::ErrorResponse(r) => r.detail.clone(),
                                other => other.to_string(),
                            },
                        ),
                        _ => Resolved::Failed(format!(
                            "{}/fetch: {}",
                            without_query(api.baseurl()),
                            crate::manage::describe(&e)
                        )),
                    };
                }
            };
            let fresh_until = asked + fresh_for(resolved.expires_in);
            for file in resolved.files {
                let answer = match (file.status, file.url) {
                    (types::ResolveStatus::Found, Some(url)) => Answer::Url(url),
                    (status, _) => Answer::Refused {
                        status: match status {
                            types::ResolveStatus::Forbidden => StatusCode::FORBIDDEN,
                            _ => StatusCode::NOT_FOUND,
                        },
                        detail: file.detail.unwrap_or_default(),
                    },
                };
                answers.push((file.digest, answer, fresh_until));
            }
        }
        Resolved::Answers(answers)
    }

    /// Where to download `record` from server `base` for one attempt: its
    /// hint when fresh, else `GET /sha512/<digest>`.
    pub(crate) async fn locate(
        &self,
        base: usize,
        record: &FileRecord,
        hints: &Hints,
    ) -> Result<String, Failure> {
        let url = self.download_url(base, record);
        match hints.take(base, &record.digest) {
            Some(Answer::Url(location)) => Ok(location),
            Some(Answer::Refused { status, detail }) => Err(Failure::Final(format!(
                "{}: {url} answered {status}: {detail}",
                record.filename
            ))),
            None => self.redirect(&url, record).await,
        }
    }

    /// `<base>/sha512/<digest>`, shown in errors (without its query).
    fn download_url(&self, base: usize, record: &FileRecord) -> String {
        format!(
            "{}/sha512/{}",
            self.apis[base].baseurl().trim_end_matches('/'),
            record.digest
        )
    }

    /// `GET /sha512/<digest>` → the signed URL of its 302.
    async fn redirect(&self, url: &str, record: &FileRecord) -> Result<String, Failure> {
        let mut target = reqwest::Url::parse(url)
            .map_err(|e| Failure::Final(format!("{}: {url}: {e}", record.filename)))?;
        if let Some(region) = &self.region {
            target.query_pairs_mut().append_pair("region", region);
        }
        let mut req = self.http.get(target.clone());
        if let Some(auth) = self
            .credentials
            .authorization("GET", &target, None)
            .map_err(Failure::Final)?
        {
            req = req.header(reqwest::header::AUTHORIZATION, auth);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Failure::transient(record, url, e))?;
        let status = resp.status();
        if status == StatusCode::FOUND || status == StatusCode::TEMPORARY_REDIRECT {
            return resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .ok_or_else(|| {
                    Failure::Final(format!(
                        "{}: {url} answered {status} without a Location",
                        record.filename
                    ))
                });
        }
        Err(Failure::of_response(record, url, resp).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_is_taken_once_from_its_server_while_fresh() {
        let hints = Hints::default();
        let later = Instant::now() + Duration::from_secs(60);
        let url = Answer::Url("https://store/a?sig".into());
        {
            let mut map = hints.0.lock().expect("lock");
            map.insert(
                "a".into(),
                Hint {
                    base: 0,
                    answer: url.clone(),
                    fresh_until: later,
                },
            );
            map.insert(
                "stale".into(),
                Hint {
                    base: 0,
                    answer: url.clone(),
                    fresh_until: Instant::now(),
                },
            );
        }
        assert_eq!(hints.take(1, "a"), None, "another server's answer");
        assert_eq!(hints.take(0, "a"), Some(url));
        assert_eq!(hints.take(0, "a"), None, "a retry asks again");
        assert_eq!(hints.take(0, "stale"), None);
        assert!(hints.is_empty());
    }

    #[test]
    fn urls_are_used_while_enough_of_their_validity_remains() {
        assert_eq!(fresh_for(60), Duration::from_secs(50));
        assert_eq!(fresh_for(20), Duration::from_secs(15));
        assert_eq!(fresh_for(0), Duration::ZERO);
    }
}
