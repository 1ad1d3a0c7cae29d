//! Measures the SHA-512 implementation the server hashes with, in MB/s,
//! for comparison with `openssl speed sha512` (bench/run prints both).

fn main() {
    let buf = vec![0x5au8; 1 << 20];
    let rounds = 2048;
    let start = std::time::Instant::now();
    let mut h = tooltool_domain::ContentHasher::new();
    for _ in 0..rounds {
        h.update(&buf);
    }
    let digest = h.finish().digest;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{:.0} MB/s ({})",
        rounds as f64 * 1.048576 / secs,
        &digest.as_str()[..8]
    );
}
