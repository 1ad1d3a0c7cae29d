//! An in-process S3 server for tests (feature `testing`): s3s with the
//! s3s-fs backend, which checks SigV4 signatures and presigned URL expiry.

/// Access key and secret of the test server.
pub const ACCESS_KEY: &str = "AKIATOOLTOOL";
pub const SECRET_KEY: &str = "tooltool-test-secret";

/// Starts a server over a fresh directory with `buckets`; answers its
/// endpoint URL (`http://127.0.0.1:<port>`).
pub async fn start(buckets: &[&str]) -> String {
    let root = tempfile_dir();
    for bucket in buckets {
        std::fs::create_dir_all(root.join(bucket)).expect("bucket");
    }
    let fs = s3s_fs::FileSystem::new(&root).expect("s3s-fs");
    let mut builder = s3s::service::S3ServiceBuilder::new(fs);
    builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let http =
            hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
        while let Ok((socket, _)) = listener.accept().await {
            let conn = http
                .serve_connection(hyper_util::rt::TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
    format!("http://{addr}")
}

/// A directory that lives as long as the test process.
fn tempfile_dir() -> std::path::PathBuf {
    use std::hash::{BuildHasher, RandomState};
    let dir = std::env::temp_dir().join(format!(
        "tooltool-s3-{:016x}",
        RandomState::new().hash_one(std::time::Instant::now())
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
