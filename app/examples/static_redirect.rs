//! The benchmark's baseline: the smallest poem server answering every
//! request with the same 302 a tooltool download answers, so that
//! `bench/run` can report tooltool's download rate as a ratio to it.
//!
//! Usage: `static_redirect <listen address> <location>`

use poem::http::StatusCode;
use poem::listener::TcpListener;
use poem::{Response, Server, handler};

#[handler]
fn redirect(location: poem::web::Data<&String>) -> Response {
    Response::builder()
        .status(StatusCode::FOUND)
        .header("Location", location.0.as_str())
        .content_type("text/html; charset=utf-8")
        .body("<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<title>Redirecting...</title>")
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8001".into());
    let location = args.next().unwrap_or_else(|| "http://127.0.0.1:8000/blob".into());
    let app = poem::EndpointExt::data(redirect, location);
    Server::new(TcpListener::bind(listen)).run(app).await
}
