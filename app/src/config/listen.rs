//! Where the server listens and how its HTTP front behaves: address,
//! public URL, request body limit, CORS.

use std::net::SocketAddr;
use std::time::Duration;

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
    /// Time a client has to send a request's headers, from connecting (or from the first
    /// byte after a keep-alive pause), however slowly they trickle in; then the connection
    /// is closed. 1s to 10m.
    #[arg(long, env = "HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,
    /// Keep-alive connections without a new request, and requests that move no byte
    /// either way (a stalled upload, a reader that stopped), are closed after this long.
    /// Keep it above the idle timeout of a proxy in front. 1s to 1h.
    #[arg(long, env = "IDLE_TIMEOUT", default_value = "75s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// Client connections open at once; more are answered 503 and closed. Default: 4096,
    /// or the open-file limit minus 256 if lower (the process raises its soft limit to the
    /// hard one at start-up).
    #[arg(long, env = "MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Client connections open at once from one address (an IPv6 /64 counts as one); more
    /// are answered 503 and closed.
    /// Behind a proxy every connection comes from the proxy: raise it to MAX_CONNECTIONS.
    #[arg(long, env = "MAX_CONNECTIONS_PER_PEER", default_value_t = 256)]
    pub max_connections_per_peer: usize,
    /// Where `GET /tooltool.py` redirects: the client script users should fetch.
    #[arg(long, env = "CLIENT_SCRIPT_URL", default_value = tooltool_http::UPSTREAM_CLIENT_SCRIPT)]
    pub client_script_url: String,
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
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    /// `None`: as many as the open-file limit allows, at most 4096
    /// (decided when binding, see `server::bind`).
    pub max_connections: Option<usize>,
    pub max_connections_per_peer: usize,
    /// An http(s) URL that is a valid `Location` header.
    pub client_script_url: String,
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
        let in_range = |variable: &'static str, value: Duration, most: Duration| {
            if value < Duration::from_secs(1) || value > most {
                return Err(err(
                    variable,
                    format!(
                        "{} is outside 1s..{}",
                        humantime::format_duration(value),
                        humantime::format_duration(most)
                    ),
                ));
            }
            Ok(value)
        };
        let header_timeout = in_range(
            "HEADER_TIMEOUT",
            self.header_timeout,
            Duration::from_secs(600),
        )?;
        let idle_timeout = in_range("IDLE_TIMEOUT", self.idle_timeout, Duration::from_secs(3600))?;
        if self.max_connections == Some(0) {
            return Err(err("MAX_CONNECTIONS", "must be at least 1"));
        }
        if self.max_connections_per_peer == 0 {
            return Err(err("MAX_CONNECTIONS_PER_PEER", "must be at least 1"));
        }
        let client_script_url = http_url("CLIENT_SCRIPT_URL", &self.client_script_url)?.text;
        // It becomes a Location header: nothing that would end the header.
        if client_script_url
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ')
        {
            return Err(err(
                "CLIENT_SCRIPT_URL",
                "must not contain spaces or control characters",
            ));
        }
        Ok(Listen {
            client_script_url: client_script_url.to_owned(),
            listen,
            public_url,
            max_request_body: self.max_request_body,
            cors_origins,
            header_timeout,
            idle_timeout,
            max_connections: self.max_connections,
            max_connections_per_peer: self.max_connections_per_peer,
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

    #[test]
    fn client_script_url() {
        let r = config(&[]).resolve().expect("valid");
        assert_eq!(
            r.listen.client_script_url,
            tooltool_http::UPSTREAM_CLIENT_SCRIPT
        );
        let r = config(&["--client-script-url", "https://example.com/tooltool.py"])
            .resolve()
            .expect("valid");
        assert_eq!(
            r.listen.client_script_url,
            "https://example.com/tooltool.py"
        );
        for bad in [
            "ftp://example.com/t.py",
            "https://",
            "https://a b/t.py",
            "https://a/\tb",
        ] {
            let e = config(&["--client-script-url", bad])
                .resolve()
                .expect_err(bad);
            assert!(e.to_string().contains("CLIENT_SCRIPT_URL"), "{bad}: {e}");
        }
    }
}
