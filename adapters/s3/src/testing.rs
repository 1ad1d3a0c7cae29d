//! An S3 server for tests and benchmarks (feature `testing`): s3s with the
//! s3s-fs backend, which checks SigV4 signatures and presigned URL expiry.

use std::path::Path;

/// Access key and secret of the test server.
pub const ACCESS_KEY: &str = "AKIATOOLTOOL";
pub const SECRET_KEY: &str = "tooltool-test-secret";

/// Starts a server over a fresh directory with `buckets`; answers its
/// endpoint URL (`http://127.0.0.1:<port>`).
pub async fn start(buckets: &[&str]) -> String {
    start_in(&tempfile_dir(), buckets).await
}

/// [`start`] over `root`, for tests that look at the server's files.
pub async fn start_in(root: &Path, buckets: &[&str]) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let root = root.to_owned();
    let buckets = buckets.iter().map(|b| (*b).to_owned()).collect();
    tokio::spawn(async move { serve(&root, buckets, listener).await });
    format!("http://{addr}")
}

/// Serves the objects under `root` (one directory per bucket; `buckets`
/// are created) on `listener` until the task is dropped.
///
/// # Panics
/// When `root` cannot be created or used.
pub async fn serve(root: &Path, buckets: Vec<String>, listener: tokio::net::TcpListener) {
    for bucket in &buckets {
        std::fs::create_dir_all(root.join(bucket)).expect("bucket");
    }
    let fs = s3s_fs::FileSystem::new(root).expect("s3s-fs");
    let mut builder = s3s::service::S3ServiceBuilder::new(fs);
    builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    let service = builder.build();
    let http = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    while let Ok((socket, _)) = listener.accept().await {
        let conn = http
            .serve_connection(hyper_util::rt::TokioIo::new(socket), service.clone())
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

/// A new directory that lives as long as the test process.
pub fn tempfile_dir() -> std::path::PathBuf {
    use std::hash::{BuildHasher, RandomState};
    let dir = std::env::temp_dir().join(format!(
        "tooltool-s3-{:016x}",
        RandomState::new().hash_one(std::time::Instant::now())
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
