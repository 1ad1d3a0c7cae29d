//! The operational routes: who the caller is (`/__permissions__`) and
//! Dockerflow's heartbeats and version.

use std::collections::BTreeMap;
use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi};
use tooltool_domain::Principal;
use tooltool_ports::{ErrorKind, ToolTool};

use crate::api::{Result, Tag, service};
use crate::payload::ApiJson;
use crate::problem::Problem;
use crate::security::Credentials;

pub struct Dockerflow {
    /// `None` only to render the document, which calls no operation.
    pub service: Option<Arc<dyn ToolTool>>,
    pub version: VersionInfo,
}

/// `/__version__` (Dockerflow), filled at build time.
#[derive(Debug, Clone, Object)]
pub struct VersionInfo {
    /// Where the source lives.
    pub source: String,
    pub version: String,
    /// The git commit the binary was built from.
    pub commit: String,
    /// The build that made the binary (CI build id or URL, or `local`).
    pub build: String,
}

/// A healthy `/__heartbeat__`.
#[derive(Debug, Clone, Object)]
pub struct Heartbeat {
    /// `ok`.
    pub status: String,
    /// Check name (`database`, `storage:<region>`, `taskcluster`) → `ok`.
    pub checks: BTreeMap<String, String>,
}

/// An unhealthy `/__heartbeat__`: the error shape plus every check's verdict.
#[derive(Debug, Clone, Object)]
pub struct HeartbeatProblem {
    #[oai(flatten)]
    pub problem: Problem,
    /// Check name → `ok` or `error` (causes are logged, not published).
    pub checks: BTreeMap<String, String>,
}

#[derive(Debug, ApiResponse)]
pub enum HeartbeatResponse {
    /// Every dependency answers.
    #[oai(status = 200)]
    Healthy(ApiJson<Heartbeat>),
    /// At least one dependency fails; `checks` names it.
    #[oai(status = 503)]
    Unhealthy(ApiJson<HeartbeatProblem>),
}

/// Who the server thinks the caller is.
#[derive(Debug, Clone, Object)]
pub struct CallerPermissions {
    /// The principal id (Taskcluster clientId or JWT `sub`); null when anonymous.
    #[oai(rename = "clientId")]
    pub client_id: Option<String>,
    /// The scopes the credential carries (anonymous: none).
    pub scopes: Vec<String>,
    /// Whether public files download without any scope on this server.
    #[oai(rename = "anonymousPublicDownload")]
    pub anonymous_public_download: bool,
}

#[OpenApi]
impl Dockerflow {
    /// Show the caller's credentials as the server understands them.
    ///
    /// Use it to debug a credential: a bad one is answered 401 with the
    /// reason, a good one shows its principal id and scopes.
    #[oai(
        path = "/__permissions__",
        method = "get",
        operation_id = "permissions",
        tag = "Tag::Auth"
    )]
    async fn permissions(
        &self,
        principal: Data<&Principal>,
        _credentials: Credentials,
    ) -> Result<ApiJson<CallerPermissions>> {
        Ok(ApiJson(CallerPermissions {
            client_id: principal.id().map(str::to_owned),
            scopes: principal.scopes().iter().map(str::to_owned).collect(),
            anonymous_public_download: service(&self.service)?
                .permissions()
                .anonymous_public_download(),
        }))
    }

    /// Load-balancer heartbeat: 200 whenever the process serves.
    #[oai(
        path = "/__lbheartbeat__",
        method = "get",
        operation_id = "lbheartbeat",
        tag = "Tag::Dockerflow"
    )]
    async fn lbheartbeat(&self) -> ApiJson<Heartbeat> {
        ApiJson(Heartbeat {
            status: "ok".into(),
            checks: BTreeMap::new(),
        })
    }

    /// Dependency heartbeat: the metadata store, every storage region and,
    /// when configured, Taskcluster. 503 names what fails.
    #[oai(
        path = "/__heartbeat__",
        method = "get",
        operation_id = "heartbeat",
        tag = "Tag::Dockerflow"
    )]
    async fn heartbeat(&self) -> Result<HeartbeatResponse> {
        let results = service(&self.service)?.health().await;
        let mut failed = Vec::new();
        let mut checks = BTreeMap::new();
        for (name, verdict) in results {
            let text = match verdict {
                Ok(()) => "ok",
                Err(cause) => {
                    tracing::warn!(check = %name, error = &*cause as &(dyn std::error::Error + 'static), "heartbeat check failed");
                    failed.push(name.clone());
                    "error"
                }
            };
            checks.insert(name, text.to_owned());
        }
        Ok(if failed.is_empty() {
            HeartbeatResponse::Healthy(ApiJson(Heartbeat {
                status: "ok".into(),
                checks,
            }))
        } else {
            HeartbeatResponse::Unhealthy(ApiJson(HeartbeatProblem {
                problem: Problem::of(
                    ErrorKind::Unavailable,
                    format!("unhealthy: {}", failed.join(", ")),
                ),
                checks,
            }))
        })
    }

    /// Version (Dockerflow): source, version, commit and build.
    #[oai(
        path = "/__version__",
        method = "get",
        operation_id = "version",
        tag = "Tag::Dockerflow"
    )]
    async fn version(&self) -> ApiJson<VersionInfo> {
        ApiJson(self.version.clone())
    }
}
