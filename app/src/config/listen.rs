//! Where the server listens and how its HTTP front behaves: address,
//! public URL, request body limit, CORS.

use std::net::SocketAddr;

use super::url::http_url;
use super::{ConfigError, err};

#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "Listening")]
pub struct ListenArgs {
    /// Address to listen on. Default 127.0.0.1:8000, or 0.0.0.0:$PORT when only PORT is set.
    #[arg(long, env = "LISTEN")]
    pub listen: Option<String>,
    /// Port to listen on all interfaces (as on Heroku), when LISTEN is not set.
    #[arg(long, env = "PORT")]
    pub port: Option<u16>,
    /// Base URL clients reach this server at; every URL handed out starts with it.
    /// Default: http://<LISTEN address>.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Largest JSON request body, in bytes (413 above).
    #[arg(long, env = "MAX_REQUEST_BODY", default_value_t = 1024 * 1024)]
    pub max_request_body: usize,
    /// Origins allowed to call the API from a browser, comma-separated; `*` allows any
    /// (never with credentials).
    #[arg(long, env = "CORS_ORIGINS", default_value = "*")]
    pub cors_origins: String,
}

/// The resolved HTTP front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    pub listen: SocketAddr,
    /// Without a trailing slash.
    pub public_url: String,
    pub max_request_body: usize,
    /// Empty allows any origin.
    pub cors_origins: Vec<String>,
}

impl ListenArgs {
    pub fn resolve(&self) -> Result<Listen, ConfigError> {
        let listen_text = match (&self.listen, self.port) {
            (Some(l), _) => l.clone(),
            (None, Some(port)) => format!("0.0.0.0:{port}"),
            (None, None) => "127.0.0.1:8000".to_owned(),
        };
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            err(
                "LISTEN",
                format!("{listen_text:?} is not an address like 127.0.0.1:8000"),
            )
        })?;
        let public_url = match &self.public_url {
            Some(text) => {
                let url = http_url("PUBLIC_URL", text)?;
                // The Mozilla client dials 443 for an http:// URL without a port.
                if !url.https && !url.has_port() {
                    return Err(err(
                        "PUBLIC_URL",
                        format!(
                            "{:?} is http:// without an explicit port; the Mozilla client would dial port 443",
                            url.text
                        ),
                    ));
                }
                url.text.to_owned()
            }
            None => {
                let host = if listen.ip().is_unspecified() {
                    "127.0.0.1".to_owned()
                } else if listen.is_ipv6() {
                    format!("[{}]", listen.ip())
                } else {
                    listen.ip().to_string()
                };
                format!("http://{host}:{}", listen.port())
            }
        };
        let cors_origins: Vec<String> = self
            .cors_origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty() && *o != "*")
            .map(str::to_owned)
            .collect();
        for origin in &cors_origins {
            // An origin is scheme and authority: a trailing slash never matches.
            if http_url("CORS_ORIGINS", origin).is_err() || origin.ends_with('/') {
                return Err(err(
                    "CORS_ORIGINS",
                    format!("{origin:?} is not an origin like https://example.com (or use *)"),
                ));
            }
        }
        if self.max_request_body < 1024 {
            return Err(err("MAX_REQUEST_BODY", "must be at least 1024 bytes"));
        }
        Ok(Listen {
            listen,
            public_url,
            max_request_body: self.max_request_body,
            cors_origins,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::config;

    #[test]
    fn listen_and_public_url() {
        let cases: &[(&[&str], &str, &str)] = &[
            (&[], "127.0.0.1:8000", "http://127.0.0.1:8000"),
            (&["--port", "5000"], "0.0.0.0:5000", "http://127.0.0.1:5000"),
            (
                &["--listen", "127.0.0.1:9", "--port", "5000"],
                "127.0.0.1:9",
                "http://127.0.0.1:9",
            ),
            (
                &["--public-url", "https://tooltool.example.com/"],
                "127.0.0.1:8000",
                "https://tooltool.example.com",
            ),
            (
                &["--listen", "[::1]:8080"],
                "[::1]:8080",
                "http://[::1]:8080",
            ),
        ];
        for (args, listen, url) in cases {
            let r = config(args).resolve().expect("valid");
            assert_eq!(r.listen.listen.to_string(), *listen, "{args:?}");
            assert_eq!(r.listen.public_url, *url, "{args:?}");
        }
    }
}
