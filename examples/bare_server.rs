//! The floor of this server's request path, for `bench/hotpath`: the same
//! connection handling as `tooltool serve` (hyper through
//! `tooltool_http::serve`, the same timeouts and caps) and a poem endpoint
//! that answers every request with a fixed response, with no routing,
//! middleware, logging or use case. What the server costs above this is
//! ours; what this costs below nginx is the framework's.
//!
//! ```text
//! cargo run --release --example bare_server -- 127.0.0.1:9001 response.http
//! ```
//!
//! `response.http` holds the status code on its first line, then header
//! lines (`Name: value`), a blank line and the body, as `curl -si` prints
//! an answer of the real server.

use std::time::Duration;

use poem::http::{HeaderName, HeaderValue, StatusCode};
use poem::{Request, Response, handler};
use tooltool_http::serve::{Caps, ServeOptions, Timeouts, serve};

#[derive(Clone)]
struct Fixed {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: bytes::Bytes,
}

/// Parses `curl -si` output: `HTTP/1.1 400 Bad Request`, headers, body.
/// Headers the server adds itself (length, date) are dropped.
fn parse(text: &str) -> Result<Fixed, String> {
    let (head, body) = text
        .split_once("\r\n\r\n")
        .or_else(|| text.split_once("\n\n"))
        .ok_or("no blank line between the headers and the body")?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or("the first line has no status code")?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or("a header line without ':'")?;
        let name: HeaderName = name.trim().parse().map_err(|_| "a bad header name")?;
        if name == "content-length" || name == "date" {
            continue;
        }
        let value = HeaderValue::from_str(value.trim()).map_err(|_| "a bad header value")?;
        headers.push((name, value));
    }
    Ok(Fixed {
        status,
        headers,
        body: bytes::Bytes::copy_from_slice(body.as_bytes()),
    })
}

#[handler]
fn answer(_req: &Request, fixed: poem::web::Data<&Fixed>) -> Response {
    let mut builder = Response::builder().status(fixed.status);
    for (name, value) in &fixed.headers {
        builder = builder.header(name, value);
    }
    builder.body(fixed.body.clone())
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(file)) = (args.next(), args.next()) else {
        eprintln!("usage: bare_server <host:port> <response file>");
        std::process::exit(2);
    };
    let fixed = std::fs::read_to_string(&file)
        .map_err(|e| e.to_string())
        .and_then(|text| parse(&text))
        .unwrap_or_else(|e| {
            eprintln!("bare_server: {file}: {e}");
            std::process::exit(2);
        });
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .unwrap_or_else(|e| {
            eprintln!("bare_server: cannot listen on {addr}: {e}");
            std::process::exit(1);
        });
    // The server's defaults (README, LISTEN_* variables).
    let options = ServeOptions {
        timeouts: Timeouts {
            header: Duration::from_secs(10),
            idle: Duration::from_secs(75),
        },
        caps: Caps {
            total: 4096,
            per_peer: 256,
        },
        grace: Duration::from_secs(1),
        metrics: None,
    };
    let endpoint = poem::EndpointExt::data(answer, fixed);
    if let Err(e) = serve(listener, endpoint, options, std::future::pending()).await {
        eprintln!("bare_server: {e}");
        std::process::exit(1);
    }
}
