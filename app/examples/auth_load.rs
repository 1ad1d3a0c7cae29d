//! Load generator for the authentication benchmark (bench/run, part d):
//! GETs one URL for a fixed time over `connections` concurrent keep-alive
//! connections, each request carrying a fresh credential, and prints the
//! number of 302 answers per second. Hawk headers are signed per request,
//! with a new nonce, exactly as the Mozilla client signs them.
//!
//! Usage: `auth_load <base url> <path> <anonymous|bearer:TOKEN|hawk:ID:ACCESS_TOKEN> <connections> <seconds>`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone)]
enum Mode {
    Anonymous,
    Bearer(String),
    Hawk { id: String, token: String },
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, path, mode, connections, seconds] = &args[..] else {
        eprintln!(
            "usage: auth_load <base url> <path> <anonymous|bearer:TOKEN|hawk:ID:TOKEN> <connections> <seconds>"
        );
        std::process::exit(2);
    };
    let mode = match mode.split_once(':') {
        None if mode == "anonymous" => Mode::Anonymous,
        Some(("bearer", token)) => Mode::Bearer(token.to_owned()),
        Some(("hawk", rest)) => {
            let (id, token) = rest.split_once(':').expect("hawk:ID:TOKEN");
            Mode::Hawk {
                id: id.to_owned(),
                token: token.to_owned(),
            }
        }
        _ => panic!("unknown mode {mode}"),
    };
    let base = base.trim_end_matches('/').to_owned();
    let authority = base.trim_start_matches("http://").to_owned();
    let (host, port) = authority.rsplit_once(':').expect("host:port");
    let (host, port): (String, u16) = (host.to_owned(), port.parse().expect("port"));
    let url = format!("{base}{path}");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(1024)
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(seconds.parse().expect("seconds"));
    let ok = Arc::new(AtomicU64::new(0));
    let nonces = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections.parse::<usize>().expect("connections") {
        let (client, url, mode, ok, nonces, host, path) = (
            client.clone(),
            url.clone(),
            mode.clone(),
            ok.clone(),
            nonces.clone(),
            host.clone(),
            path.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let mut req = client.get(&url);
                match &mode {
                    Mode::Anonymous => {}
                    Mode::Bearer(token) => {
                        req = req.header("Authorization", format!("Bearer {token}"))
                    }
                    Mode::Hawk { id, token } => {
                        let nonce = format!("b{}", nonces.fetch_add(1, Ordering::Relaxed));
                        let header = tooltool_taskcluster::sign(
                            id,
                            token,
                            chrono::Utc::now().timestamp(),
                            &nonce,
                            &tooltool_taskcluster::SignedRequest {
                                method: "GET",
                                resource: &path,
                                host: &host,
                                port,
                                payload: None,
                            },
                        );
                        req = req.header("Authorization", header);
                    }
                }
                if let Ok(resp) = req.send().await
                    && resp.status() == reqwest::StatusCode::FOUND
                {
                    let _ = resp.bytes().await;
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    println!(
        "{:.0}",
        ok.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
    );
}
