//! Connection limits over real sockets (issue: connection floods): header
//! timeout against trickled headers, keep-alive idle limit, caps in all
//! and per peer with a 503 in the error shape, and room for other peers
//! while one floods.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tooltool_tests::{TestApp, spawn_with};

fn addr(app: &TestApp) -> SocketAddr {
    app.url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("socket address")
}

/// A connection from `source` (any 127.0.0.0/8 address reaches loopback),
/// so that one test can be several peers.
async fn connect_from(source: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((source, 0)))
        .expect("bind source");
    socket.connect(to).await.expect("connect")
}

/// Reads until the peer closes (or `limit` passes): what it sent, and
/// whether it closed.
async fn read_to_close(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let closed = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&got).into_owned(), closed)
}

/// One HTTP/1.1 request on an open connection; the response head and body
/// (read by Content-Length).
async fn exchange(stream: &mut TcpStream, path: &str) -> String {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("answered in time")
            .expect("read");
        assert_ne!(
            n,
            0,
            "closed before answering: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return text.into_owned();
            }
        }
    }
}

#[tokio::test]
async fn trickled_headers_are_cut_off_at_the_header_timeout() {
    let app = spawn_with(&["--header-timeout", "1s"]).await;
    let mut stream = connect_from([127, 0, 0, 1], addr(&app)).await;
    let started = Instant::now();
    let request = b"GET /__heartbeat__ HTTP/1.1\r\nhost: x\r\nx-slow: ";
    let trickle = async {
        for byte in request.iter().chain(std::iter::repeat(&b'a')) {
            if stream.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    // The server closes: the next write fails (or reads see EOF).
    tokio::time::timeout(Duration::from_secs(5), trickle)
        .await
        .expect("the server closed the trickling connection");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "closed after {took:?}, expected about 1 s"
    );
}

#[tokio::test]
async fn a_silent_connection_is_closed_at_the_header_timeout() {
    let app = spawn_with(&["--header-timeout", "1s"]).await;
    let mut stream = connect_from([127, 0, 0, 1], addr(&app)).await;
    let (sent, closed) = read_to_close(&mut stream, Duration::from_secs(5)).await;
    assert!(closed, "still open after 5 s");
    assert_eq!(sent, "", "closed without an answer");
}

#[tokio::test]
async fn keep_alive_outlives_the_header_timeout_until_the_idle_timeout() {
    let app = spawn_with(&["--header-timeout", "1s", "--idle-timeout", "3s"]).await;
    let mut stream = connect_from([127, 0, 0, 1], addr(&app)).await;
    let first = exchange(&mut stream, "/__lbheartbeat__").await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    // Idle for twice the header timeout: a keep-alive pause, not headers.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let second = exchange(&mut stream, "/__lbheartbeat__").await;
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    let idle_from = Instant::now();
    let (_, closed) = read_to_close(&mut stream, Duration::from_secs(6)).await;
    assert!(closed, "keep-alive connection never closed");
    let idle = idle_from.elapsed();
    assert!(
        idle >= Duration::from_millis(2800) && idle < Duration::from_secs(5),
        "closed after {idle:?} idle, expected about 3 s"
    );
}

#[tokio::test]
async fn caps_refuse_with_a_503_and_leave_room_for_other_peers() {
    let app = spawn_with(&[
        "--max-connections",
        "4",
        "--max-connections-per-peer",
        "2",
        "--header-timeout",
        "30s",
    ])
    .await;
    let to = addr(&app);
    // A flooding peer holds its share with silent connections.
    let mut flood = vec![
        connect_from([127, 0, 0, 2], to).await,
        connect_from([127, 0, 0, 2], to).await,
    ];
    let mut third = connect_from([127, 0, 0, 2], to).await;
    let (answer, closed) = read_to_close(&mut third, Duration::from_secs(5)).await;
    assert!(closed, "a refused connection is closed");
    assert!(
        answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{answer}"
    );
    assert!(answer.contains("retry-after: 1\r\n"), "{answer}");
    let body: serde_json::Value =
        serde_json::from_str(answer.split("\r\n\r\n").nth(1).expect("body")).expect("JSON");
    assert_eq!(body["error"]["name"], "503 Service Unavailable");
    assert_eq!(body["status"], 503);

    // Another peer is still served while the flood holds its connections.
    let mut other = connect_from([127, 0, 0, 3], to).await;
    let answer = exchange(&mut other, "/__lbheartbeat__").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Four open now: the server is full for everyone.
    let _fourth = connect_from([127, 0, 0, 3], to).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fifth = connect_from([127, 0, 0, 4], to).await;
    let (answer, _) = read_to_close(&mut fifth, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");

    // A closed connection frees its place.
    flood.pop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = connect_from([127, 0, 0, 2], to).await;
    let answer = exchange(&mut again, "/__lbheartbeat__").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(flood);
}

#[tokio::test]
async fn connection_limits_are_metrics() {
    let app = spawn_with(&["--max-connections-per-peer", "1"]).await;
    let to = addr(&app);
    let _held = connect_from([127, 0, 0, 2], to).await;
    let mut refused = connect_from([127, 0, 0, 2], to).await;
    let _ = read_to_close(&mut refused, Duration::from_secs(5)).await;
    let text = app
        .http
        .get(app.at("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        text.contains(r#"tooltool_connections_closed_by_limit_total{reason="refused_peer"} 1"#),
        "{text}"
    );
    assert!(text.contains("tooltool_connections_open "), "{text}");
}
