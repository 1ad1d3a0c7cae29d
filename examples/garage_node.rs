//! A local single-node Garage (the S3-compatible store the tests use) with
//! the buckets named on the command line, for benchmarks and trying
//! tooltool on a real S3-compatible store:
//!
//! ```text
//! cargo run --release --example garage_node -- tooltool-east tooltool-west
//! ```
//!
//! It prints the endpoint, keys and signing region, then runs until
//! interrupted (the node stops with it). The Garage binary is found as
//! the tests find it (`TOOLTOOL_GARAGE`, `PATH`, `~/.cache/garage/bin`).

#[tokio::main]
async fn main() {
    use tooltool_s3::garage::{ACCESS_KEY, Garage, SECRET_KEY, SIGNING_REGION};
    let buckets: Vec<String> = std::env::args().skip(1).collect();
    if buckets.is_empty() {
        eprintln!("usage: garage_node <bucket>...");
        std::process::exit(2);
    }
    let names: Vec<&str> = buckets.iter().map(String::as_str).collect();
    let node = Garage::start(&names);
    println!(
        "S3_ENDPOINT={} S3_SIGNING_REGION={SIGNING_REGION} S3_REGIONS_ACCESS_KEY_ID={ACCESS_KEY} S3_REGIONS_SECRET_ACCESS_KEY={SECRET_KEY}",
        node.endpoint
    );
    let _ = tokio::signal::ctrl_c().await;
    drop(node);
}
