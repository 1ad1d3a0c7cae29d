//! Credentials and request signing, read as `tooltool.py` reads them: the
//! `--authentication-file` holds a bearer token or Taskcluster credentials
//! (JSON); without a file, `TASKCLUSTER_CLIENT_ID` and
//! `TASKCLUSTER_ACCESS_TOKEN` (and `TASKCLUSTER_CERTIFICATE` for temporary
//! credentials, as other Taskcluster tools read them). Taskcluster
//! credentials sign every request with Hawk over its method, path and
//! query, host and port, and the hash of its body; a certificate travels
//! in Hawk's `ext`, as Taskcluster's own clients send it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};

/// Who the client says it is.
#[derive(Clone, Default)]
pub enum Credentials {
    #[default]
    Anonymous,
    Bearer(String),
    Taskcluster(Taskcluster),
}

/// Taskcluster credentials: permanent, or temporary with their certificate.
#[derive(Clone)]
pub struct Taskcluster {
    pub client_id: String,
    access_token: String,
    /// The certificate's JSON object, as Taskcluster issued it.
    certificate: Option<serde_json::Value>,
}

impl std::fmt::Debug for Credentials {
    /// Never the secret: what kind, and whose.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Anonymous => f.write_str("anonymous"),
            Self::Bearer(_) => f.write_str("a bearer token"),
            Self::Taskcluster(t) => write!(
                f,
                "Taskcluster client {}{}",
                t.client_id,
                if t.certificate.is_some() {
                    " (temporary)"
                } else {
                    ""
                }
            ),
        }
    }
}

impl Taskcluster {
    /// `certificate`: its JSON text or object, when temporary.
    pub fn new(
        client_id: &str,
        access_token: &str,
        certificate: Option<serde_json::Value>,
    ) -> Result<Self, String> {
        if client_id.is_empty() || access_token.is_empty() {
            return Err("Taskcluster credentials need a clientId and an accessToken".into());
        }
        let certificate = match certificate {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(text)) if text.trim().is_empty() => None,
            Some(serde_json::Value::String(text)) => Some(
                serde_json::from_str::<serde_json::Value>(&text)
                    .map_err(|e| format!("the Taskcluster certificate is not JSON: {e}"))?,
            ),
            Some(object) => Some(object),
        };
        if certificate.as_ref().is_some_and(|c| !c.is_object()) {
            return Err("the Taskcluster certificate must be a JSON object".into());
        }
        Ok(Self {
            client_id: client_id.to_owned(),
            access_token: access_token.to_owned(),
            certificate,
        })
    }

    /// The Hawk header of one request.
    fn hawk(
        &self,
        method: &str,
        url: &reqwest::Url,
        body: Option<(&str, &[u8])>,
    ) -> Result<String, String> {
        let fail = |e: hawk::Error| format!("cannot sign the request with Hawk: {e}");
        let credentials = hawk::Credentials {
            id: self.client_id.clone(),
            key: hawk::Key::new(self.access_token.as_bytes(), hawk::DigestAlgorithm::Sha256)
                .map_err(fail)?,
        };
        let hash = body
            .map(|(content_type, bytes)| {
                hawk::PayloadHasher::hash(
                    normalized_mime(content_type),
                    hawk::DigestAlgorithm::Sha256,
                    bytes,
                )
            })
            .transpose()
            .map_err(fail)?;
        let ext = self
            .certificate
            .as_ref()
            .map(|c| STANDARD.encode(serde_json::json!({ "certificate": c }).to_string()));
        let header = hawk::RequestBuilder::from_url(method, url)
            .map_err(fail)?
            .hash(hash.as_deref())
            .ext(ext.as_deref())
            .request()
            .make_header(&credentials)
            .map_err(fail)?;
        Ok(format!("Hawk {header}"))
    }
}

/// Hawk hashes the media type without its parameters, in lower case.
fn normalized_mime(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

impl Credentials {
    /// The contents of an `--authentication-file`: JSON with `clientId`
    /// and `accessToken` (and `certificate`) is Taskcluster's, anything
    /// else a bearer token, as `tooltool.py` decides.
    pub fn from_file(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the authentication file is empty".into());
        }
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(text) {
            let member = |name: &str| json.get(name).and_then(|v| v.as_str());
            let (Some(id), Some(token)) = (member("clientId"), member("accessToken")) else {
                return Err(
                    "the authentication file is JSON without clientId and accessToken strings"
                        .into(),
                );
            };
            return Taskcluster::new(id, token, json.get("certificate").cloned())
                .map(Self::Taskcluster);
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("the authentication file must hold one token, without spaces".into());
        }
        Ok(Self::Bearer(text.to_owned()))
    }

    /// Without a file: Taskcluster's variables when both the id and the
    /// token are set (`get` reads one), else anonymous.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        match (
            get("TASKCLUSTER_CLIENT_ID"),
            get("TASKCLUSTER_ACCESS_TOKEN"),
        ) {
            (Some(id), Some(token)) => Taskcluster::new(
                &id,
                &token,
                get("TASKCLUSTER_CERTIFICATE").map(serde_json::Value::String),
            )
            .map(Self::Taskcluster),
            _ => Ok(Self::Anonymous),
        }
    }

    /// The `Authorization` value for a request; `body` is its content type
    /// and bytes, when it has one.
    pub fn authorization(
        &self,
        method: &str,
        url: &reqwest::Url,
        body: Option<(&str, &[u8])>,
    ) -> Result<Option<HeaderValue>, String> {
        let text = match self {
            Self::Anonymous => return Ok(None),
            Self::Bearer(token) => format!("Bearer {token}"),
            Self::Taskcluster(tc) => tc.hawk(method, url, body)?,
        };
        let mut value = HeaderValue::from_str(&text)
            .map_err(|_| "the credential is not a valid header value".to_owned())?;
        value.set_sensitive(true);
        Ok(Some(value))
    }

    /// Sets the request's `Authorization` (the generated client's hook;
    /// every request is signed as it leaves, so a Hawk nonce is never
    /// reused).
    pub fn sign(&self, request: &mut reqwest::Request) -> Result<(), String> {
        let content_type = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_owned();
        let body = request.body().map(|b| {
            b.as_bytes()
                .ok_or_else(|| "a streamed body cannot be signed".to_owned())
        });
        let body = body.transpose()?.map(|b| (content_type.as_str(), b));
        if let Some(value) = self.authorization(request.method().as_str(), request.url(), body)? {
            request.headers_mut().insert(AUTHORIZATION, value);
        }
        Ok(())
    }
}

/// [`Credentials::sign`] in the shape progenitor's async pre-hook calls.
pub async fn sign(credentials: &Credentials, request: &mut reqwest::Request) -> Result<(), String> {
    credentials.sign(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_read_as_tooltool_py_reads_them() {
        assert!(matches!(
            Credentials::from_file("  tok3n\n"),
            Ok(Credentials::Bearer(t)) if t == "tok3n"
        ));
        let permanent = Credentials::from_file(r#"{"clientId": "me", "accessToken": "s3cret"}"#)
            .expect("Taskcluster");
        assert_eq!(format!("{permanent:?}"), "Taskcluster client me");
        let temporary = Credentials::from_file(
            r#"{"clientId": "me", "accessToken": "t", "certificate": "{\"version\":1,\"seed\":\"x\"}"}"#,
        )
        .expect("Taskcluster");
        assert_eq!(
            format!("{temporary:?}"),
            "Taskcluster client me (temporary)"
        );
        let object = Credentials::from_file(
            r#"{"clientId": "me", "accessToken": "t", "certificate": {"version": 1}}"#,
        )
        .expect("a certificate object");
        assert_eq!(format!("{object:?}"), "Taskcluster client me (temporary)");
        for (text, why) in [
            ("", "empty"),
            ("two words", "one token"),
            (r#"{"clientId": "me"}"#, "without clientId and accessToken"),
            (
                r#"{"clientId": "me", "accessToken": "t", "certificate": "not json"}"#,
                "not JSON",
            ),
            (
                r#"{"clientId": "me", "accessToken": "t", "certificate": [1]}"#,
                "must be a JSON object",
            ),
        ] {
            let e = Credentials::from_file(text).expect_err(text);
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn the_environment_is_read_as_taskcluster_tools_read_it() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert!(matches!(
            Credentials::from_env(env(&[("TASKCLUSTER_CLIENT_ID", "me")])),
            Ok(Credentials::Anonymous)
        ));
        let c = Credentials::from_env(env(&[
            ("TASKCLUSTER_CLIENT_ID", "me"),
            ("TASKCLUSTER_ACCESS_TOKEN", "t"),
            ("TASKCLUSTER_CERTIFICATE", r#"{"version":1}"#),
        ]))
        .expect("credentials");
        assert_eq!(format!("{c:?}"), "Taskcluster client me (temporary)");
    }

    /// The header verifies with the `hawk` crate's own check over the same
    /// method, resource (path and query), host, port and payload hash.
    #[test]
    fn hawk_signs_path_query_and_body() {
        let c = Taskcluster::new("me", "s3cret", None).expect("credentials");
        let url = reqwest::Url::parse("http://127.0.0.1:8123/fetch?region=us-west-2").expect("url");
        let header = c
            .hawk(
                "POST",
                &url,
                Some(("application/json; charset=utf-8", b"{}")),
            )
            .expect("signed");
        let parsed: hawk::Header = header
            .strip_prefix("Hawk ")
            .expect("scheme")
            .parse()
            .expect("a Hawk header");
        let key = hawk::Key::new(b"s3cret", hawk::DigestAlgorithm::Sha256).expect("key");
        let hash =
            hawk::PayloadHasher::hash("application/json", hawk::DigestAlgorithm::Sha256, b"{}")
                .expect("hash");
        let check = |resource: &str| {
            hawk::RequestBuilder::new("POST", "127.0.0.1", 8123, resource)
                .hash(Some(&hash[..]))
                .request()
                .validate_header(&parsed, &key, std::time::Duration::from_secs(60))
        };
        assert!(check("/fetch?region=us-west-2"));
        assert!(!check("/fetch"), "the query is signed");
        assert_eq!(parsed.id.as_deref(), Some("me"));
        assert_eq!(parsed.ext, None);
    }

    #[test]
    fn a_certificate_travels_in_ext() {
        let c = Taskcluster::new(
            "me",
            "t",
            Some(serde_json::json!({"version": 1, "seed": "s"})),
        )
        .expect("credentials");
        let url = reqwest::Url::parse("https://tooltool.example/sha512/ab").expect("url");
        let header: hawk::Header = c
            .hawk("GET", &url, None)
            .expect("signed")
            .strip_prefix("Hawk ")
            .expect("scheme")
            .parse()
            .expect("a Hawk header");
        let ext = STANDARD.decode(header.ext.expect("ext")).expect("base64");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&ext).expect("JSON"),
            serde_json::json!({"certificate": {"version": 1, "seed": "s"}})
        );
    }
}
