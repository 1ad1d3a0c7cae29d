//! A local S3-compatible server (s3s + s3s-fs) for benchmarks and trying
//! tooltool on S3 without AWS:
//!
//! ```text
//! cargo run --release --example s3_server -- \
//!     /var/tmp/s3 127.0.0.1:9000 tooltool-east tooltool-west
//! ```
//!
//! It lives in the root package, a default member, so it builds with the
//! same features as the server (see the root Cargo.toml). Credentials are
//! [`tooltool_s3::testing::ACCESS_KEY`] / `SECRET_KEY`.

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(root), Some(addr)) = (args.next(), args.next()) else {
        eprintln!("usage: s3_server <root dir> <host:port> <bucket>...");
        std::process::exit(2);
    };
    let buckets: Vec<String> = args.collect();
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("s3_server: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "serving {root} on http://{addr} (access key {}, secret {})",
        tooltool_s3::testing::ACCESS_KEY,
        tooltool_s3::testing::SECRET_KEY
    );
    tooltool_s3::testing::serve(std::path::Path::new(&root), buckets, listener).await;
}
