//! `GET /tooltool.py`: a redirect to the client script, as the third
//! generation answered, because setup instructions in the wild fetch the
//! client from the server they talk to.

use poem_openapi::payload::Html;
use poem_openapi::{ApiResponse, OpenApi};

use crate::api::{Tag, redirect_page};

/// Where the third generation sent `/tooltool.py`: the client's upstream
/// source (its `TOOLTOOL_PY_URL`).
pub const UPSTREAM_CLIENT_SCRIPT: &str =
    "https://raw.githubusercontent.com/mozilla-releng/tooltool/master/client/tooltool.py";

pub struct ClientScript {
    /// The configured `CLIENT_SCRIPT_URL`.
    pub url: String,
}

#[derive(Debug, ApiResponse)]
pub enum ClientScriptResponse {
    /// Redirect to the client script (`CLIENT_SCRIPT_URL`).
    #[oai(status = 302)]
    Found(Html<String>, #[oai(header = "Location")] String),
}

#[OpenApi]
impl ClientScript {
    /// Fetch the client.
    ///
    /// Redirects (302) to the `tooltool.py` client script this server
    /// recommends (`CLIENT_SCRIPT_URL`; by default the upstream client).
    #[oai(
        path = "/tooltool.py",
        method = "get",
        operation_id = "clientScript",
        tag = "Tag::Download"
    )]
    async fn client_script(&self) -> ClientScriptResponse {
        ClientScriptResponse::Found(Html(redirect_page(&self.url)), self.url.clone())
    }
}
