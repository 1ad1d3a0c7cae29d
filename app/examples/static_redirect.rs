//! The benchmark's baseline: the smallest poem server answering every
//! request with the same 302 a tooltool download answers (same Location,
//! same body), so that `bench/run` can report tooltool's download rate as
//! a ratio to it.
//!
//! Usage: `static_redirect <listen address> <location> <body file>`

use poem::http::StatusCode;
use poem::listener::TcpListener;
use poem::web::Data;
use poem::{EndpointExt, Response, Server, handler};

#[derive(Clone)]
struct Reply {
    location: String,
    body: bytes::Bytes,
}

#[handler]
fn redirect(reply: Data<&Reply>) -> Response {
    Response::builder()
        .status(StatusCode::FOUND)
        .header("Location", reply.location.as_str())
        .content_type("text/html; charset=utf-8")
        .body(reply.body.clone())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(location), Some(body)) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: static_redirect <listen address> <location> <body file>");
        std::process::exit(2);
    };
    let body = bytes::Bytes::from(std::fs::read(body)?);
    let app = redirect.data(Reply { location, body });
    Server::new(TcpListener::bind(listen)).run(app).await
}
