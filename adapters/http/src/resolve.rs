//! Wire types of `POST /fetch` (PROTOCOL.md §2.6): many downloads resolved
//! in one request, each digest answered on its own.

use poem_openapi::{Enum, Object};
use serde_json::Value;
use tooltool_domain::Digest;
use tooltool_ports::{ErrorKind, MAX_RESOLVE, Resolution, Resolutions, UseCaseError};

use crate::model::VisibilityName;
use crate::payload::FromJsonBody;

/// `POST /fetch` body.
#[derive(Debug, Clone, Object)]
pub struct FetchRequestDoc {
    /// SHA-512 digests (128 lower-case hex digits), at most 1024; each is
    /// answered in this order, duplicates included.
    #[oai(validator(max_items = 1024, pattern = "^[0-9a-f]{128}$"))]
    pub digests: Vec<String>,
}

/// A parsed `POST /fetch` body.
#[derive(Debug)]
pub struct FetchBody(pub Vec<Digest>);

impl FromJsonBody for FetchBody {
    type Doc = FetchRequestDoc;

    fn from_json(value: Value) -> Result<Self, String> {
        let digests = value
            .as_object()
            .and_then(|o| o.get("digests"))
            .ok_or("the request body must be a JSON object with 'digests'")?
            .as_array()
            .ok_or("'digests' must be an array of sha512 digests")?;
        // The document's bound, refused before any digest is parsed (the
        // use case holds the same rule for every front).
        if digests.len() > MAX_RESOLVE {
            return Err(format!(
                "at most {MAX_RESOLVE} digests may be resolved at once, not {}",
                digests.len()
            ));
        }
        digests
            .iter()
            .enumerate()
            .map(|(i, d)| {
                d.as_str()
                    .ok_or_else(|| format!("'digests'[{i}] must be a string"))
                    .and_then(|d| Digest::parse(d).map_err(|e| format!("'digests'[{i}]: {e}")))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

/// Whether a digest can be downloaded, and why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum ResolveStatus {
    /// `url` is a signed URL of a verified copy.
    Found,
    /// No such file, or no verified copy in a region this server serves.
    NotFound,
    /// Declared in a batch, but no copy is verified yet.
    NotVerified,
    /// The caller may not download files of this visibility.
    Forbidden,
}

/// One digest's answer.
#[derive(Debug, Clone, Object)]
pub struct ResolvedFile {
    pub digest: String,
    pub status: ResolveStatus,
    /// Bytes; absent when the server has no record of the file.
    #[oai(skip_serializing_if_is_none)]
    pub size: Option<u64>,
    /// Absent when the server has no record of the file.
    #[oai(skip_serializing_if_is_none)]
    pub visibility: Option<VisibilityName>,
    /// With `found`: the signed URL, to `GET` without credentials.
    #[oai(skip_serializing_if_is_none)]
    pub url: Option<String>,
    /// Otherwise: why, in the words `GET /sha512/{digest}` would use.
    #[oai(skip_serializing_if_is_none)]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Object)]
pub struct Resolved {
    /// Seconds the URLs stay valid from now; a URL used later must be
    /// asked for again (`GET /sha512/{digest}` answers one).
    pub expires_in: u64,
    /// One per digest of the request, in its order.
    pub files: Vec<ResolvedFile>,
}

#[derive(Debug, Clone, Object)]
pub struct ResolvedResult {
    pub result: Resolved,
}

impl TryFrom<Resolutions> for ResolvedResult {
    type Error = UseCaseError;

    /// Fails on a refusal the port does not promise (it would be a fault).
    fn try_from(r: Resolutions) -> Result<Self, UseCaseError> {
        let files = r
            .files
            .into_iter()
            .map(|Resolution { digest, file, url }| {
                let (status, url, detail) = match url {
                    Ok(url) => (ResolveStatus::Found, Some(url), None),
                    Err(e) => {
                        let status = match e.kind() {
                            ErrorKind::NotFound => ResolveStatus::NotFound,
                            ErrorKind::NotYet => ResolveStatus::NotVerified,
                            ErrorKind::Denied => ResolveStatus::Forbidden,
                            _ => return Err(e),
                        };
                        (status, None, Some(e.message().to_owned()))
                    }
                };
                Ok(ResolvedFile {
                    digest: digest.to_string(),
                    status,
                    size: file.map(|(size, _)| size),
                    visibility: file.map(|(_, v)| v.into()),
                    url,
                    detail,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            result: Resolved {
                expires_in: r.expires_in_secs,
                files,
            },
        })
    }
}
