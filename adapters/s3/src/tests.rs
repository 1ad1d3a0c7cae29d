//! The S3 adapter's tests, against an in-process s3s-fs server: the
//! BlobStore contract, presigned URLs with a plain HTTP client, and the
//! multipart paths (with lowered thresholds).

mod contract {
    use tooltool_domain::RegionName;

    /// Two stores (two buckets) on a fresh in-process S3 server.
    pub(crate) async fn pair() -> (crate::S3Store, crate::S3Store) {
        pair_in(&crate::testing::tempfile_dir()).await
    }

    /// [`pair`] on a server keeping its files under `root`.
    pub(crate) async fn pair_in(root: &std::path::Path) -> (crate::S3Store, crate::S3Store) {
        let endpoint = crate::testing::start_in(root, &["tooltool-east", "tooltool-west"]).await;
        let account = crate::Account::new(
            Some(&endpoint),
            crate::testing::ACCESS_KEY,
            crate::testing::SECRET_KEY,
        );
        stores(&account).await
    }

    /// The regions us-east-1 and us-west-2 on buckets tooltool-east and
    /// tooltool-west of `account`, checked.
    pub(crate) async fn stores(account: &crate::Account) -> (crate::S3Store, crate::S3Store) {
        let store = |region: &str, bucket: &str| {
            let region = RegionName::parse(region).expect("valid");
            let signer =
                tooltool_domain::UrlSigner::new(&region, "http://tooltool.test", b"secret");
            crate::S3Store::new(region, bucket, account, signer)
        };
        let (east, west) = (
            store("us-east-1", "tooltool-east"),
            store("us-west-2", "tooltool-west"),
        );
        east.check().await.expect("the bucket answers");
        west.check().await.expect("the bucket answers");
        (east, west)
    }

    /// A store on a fresh in-process S3 server.
    pub(crate) async fn store() -> crate::S3Store {
        pair().await.0
    }

    tooltool_ports::blob_store_contract!(store().await, receives_above: crate::write::SINGLE_MAX);
    tooltool_ports::blob_store_contract!(server_side_copy: pair().await);

    /// The stores above read each object in one request (an endpoint's
    /// default); AWS's way, ranges several at once, reads the same bytes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ranged_reads_stream_in_bounded_chunks() {
        tooltool_ports::contract::blob::large_objects_stream_in_bounded_chunks(
            std::sync::Arc::new(store().await.with_read_streams(4)),
        )
        .await;
    }
}

/// The same contract against a real Garage node, which also stores what
/// s3s-fs cannot: multipart uploads and copies of real keys.
mod on_garage {
    use std::sync::OnceLock;

    use crate::garage::{ACCESS_KEY, Garage, SECRET_KEY, SIGNING_REGION};

    /// One node per test process, two buckets on it.
    fn node() -> &'static Garage {
        static NODE: OnceLock<Garage> = OnceLock::new();
        NODE.get_or_init(|| Garage::start(&["tooltool-east", "tooltool-west"]))
    }

    /// Two stores (two tooltool regions, two buckets) on one Garage
    /// endpoint, both signed for Garage's one region.
    pub(crate) async fn pair() -> (crate::S3Store, crate::S3Store) {
        let node = tokio::task::spawn_blocking(node).await.expect("node");
        let account = crate::Account::new(Some(&node.endpoint), ACCESS_KEY, SECRET_KEY)
            .with_signing_region(Some(SIGNING_REGION));
        crate::tests::contract::stores(&account).await
    }

    async fn store() -> crate::S3Store {
        pair().await.0
    }

    /// A store that receives uploads above 6 MiB here, in parts of 5 MiB
    /// (S3's smallest).
    async fn receiving_store() -> crate::S3Store {
        store().await.with_multipart(6 * MIB, 5 * MIB)
    }

    const MIB: u64 = 1024 * 1024;

    tooltool_ports::blob_store_contract!(receiving_store().await, receives_above: 6 * MIB);
    tooltool_ports::blob_store_contract!(receives_in_parts: receiving_store().await, 5 * MIB);
    tooltool_ports::blob_store_contract!(server_side_copy: pair().await);

    /// Ranged reads (AWS's way) are pinned to the version of their first
    /// range: an object replaced mid-read fails the read as Changed,
    /// never mixing two versions' bytes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ranged_reads_are_pinned_to_one_version() {
        use crate::tests::multipart::{chunks, content};
        use futures_util::StreamExt;
        use tooltool_domain::ObjectKey;
        use tooltool_ports::{BlobError, BlobStore};
        let store = store().await.with_read_streams(4);
        tooltool_ports::contract::blob::large_objects_stream_in_bounded_chunks(
            std::sync::Arc::new(store.clone()),
        )
        .await;
        let content = content();
        let size = content.len() as u64;
        let key = ObjectKey::File(tooltool_ports::contract::digest_of(&content));
        store
            .put(&key, size, chunks(&content, false))
            .await
            .expect("put");
        let mut read = store.get(&key).await.expect("get");
        // The first range arrives with the answer; the others are asked
        // for once it has been consumed.
        let mut got = 0;
        while got < 2 * MIB as usize {
            got += read.next().await.expect("a chunk").expect("bytes").len();
        }
        let mut replaced = content.clone();
        replaced[9 * MIB as usize] ^= 1;
        store
            .put(&key, size, chunks(&replaced, false))
            .await
            .expect("replace");
        let mut outcome = Ok(());
        while let Some(chunk) = read.next().await {
            if let Err(e) = chunk {
                outcome = Err(e);
                break;
            }
        }
        assert!(matches!(outcome, Err(BlobError::Changed)), "{outcome:?}");
    }

    /// Promotion above the single-request limit goes by part copies, each
    /// conditioned on the hashed version: a staging object replaced after
    /// it was inspected is refused and nothing is promoted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn promotion_in_parts_moves_only_the_inspected_version() {
        use crate::tests::multipart::{chunks, content, read};
        use tooltool_domain::{ObjectKey, StagingKey};
        use tooltool_ports::{BlobError, BlobStore};
        let store = receiving_store().await;
        let content = content();
        let size = content.len() as u64;
        let digest = tooltool_ports::contract::digest_of(&content);
        let slot = StagingKey::new(digest.clone(), "0123456789abcdef").expect("slot");
        let staging = ObjectKey::from(slot.clone());
        store
            .put(&staging, size, chunks(&content, false))
            .await
            .expect("put");
        let inspected = store.head(&staging).await.expect("head").expect("exists");
        let mut swapped = content.clone();
        swapped[7 * MIB as usize] ^= 1;
        store
            .put(&staging, size, chunks(&swapped, false))
            .await
            .expect("replace");
        assert!(matches!(
            store.promote(&slot, &inspected).await,
            Err(BlobError::Changed)
        ));
        let file = ObjectKey::File(digest);
        assert_eq!(store.head(&file).await.expect("head"), None);
        let current = store.head(&staging).await.expect("head").expect("exists");
        store.promote(&slot, &current).await.expect("promote");
        assert_eq!(store.head(&staging).await.expect("head"), None);
        assert_eq!(read(&store, &file.to_string()).await, swapped);
    }

    /// Multipart uploads and copies of real keys (a file's final key, 135
    /// characters), which s3s-fs cannot store; a failed one is aborted and
    /// leaves no object and no open upload.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn multipart_writes_and_copies_of_real_keys() {
        use crate::tests::multipart::{MIB, chunks, content, read};
        use tooltool_ports::BlobStore;
        let (east, west) = pair().await;
        let (east, west) = (
            east.with_multipart(6 * MIB, 5 * MIB),
            west.with_multipart(6 * MIB, 5 * MIB),
        );
        let content = content();
        let size = content.len() as u64;
        let key = format!("sha512/{}", "ab".repeat(64));
        east.write(&key, size, chunks(&content, false))
            .await
            .expect("multipart put");
        let info = east.head_key(&key).await.expect("head").expect("exists");
        assert_eq!(info.size, size);
        assert!(info.etag.contains("-3"), "three parts: {}", info.etag);
        assert_eq!(read(&east, &key).await, content);
        let source = east.copy_source().expect("copy source");
        west.copy(&source, &key, size)
            .await
            .expect("multipart copy");
        assert_eq!(read(&west, &key).await, content);

        let broken = format!("sha512/{}", "cd".repeat(64));
        let failed = east.write(&broken, size, chunks(&content[..6 * MIB as usize], true));
        assert!(matches!(
            failed.await,
            Err(tooltool_ports::BlobError::Interrupted(_))
        ));
        assert_eq!(east.head_key(&broken).await.expect("head"), None);
        let open = east
            .client
            .list_multipart_uploads()
            .bucket(&east.bucket)
            .send()
            .await
            .expect("list uploads");
        assert!(open.uploads().is_empty(), "aborted: {:?}", open.uploads());
    }
}

mod presigning {
    use chrono::{Duration, Utc};
    use tooltool_domain::{ContentHasher, ObjectKey, StagingKey};
    use tooltool_ports::BlobStore;

    /// Presigned URLs work with a plain HTTP client (as the Mozilla client
    /// uses them), and the declared size is part of the PUT signature.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn presigned_urls_bind_key_and_size() {
        let store = crate::tests::contract::store().await;
        let content = b"presigned upload";
        let digest = {
            let mut h = ContentHasher::new();
            h.update(content);
            h.finish().digest
        };
        let slot = StagingKey::new(digest.clone(), "0123456789abcdef").expect("slot");
        let url = store
            .presign_put(
                &slot,
                content.len() as u64,
                Utc::now() + Duration::seconds(60),
            )
            .await
            .expect("presign");
        let http = reqwest::Client::new();
        let wrong_size = http
            .put(&url)
            .body(b"presigned upload, longer".to_vec())
            .send()
            .await
            .expect("put");
        assert!(
            !wrong_size.status().is_success(),
            "a body of another size is refused: {}",
            wrong_size.status()
        );
        assert_eq!(store.head(&slot.clone().into()).await.expect("head"), None);
        let ok = http
            .put(&url)
            .header("Content-Type", "application/octet-stream")
            .body(content.to_vec())
            .send()
            .await
            .expect("put");
        assert_eq!(ok.status(), 200, "the Mozilla client accepts exactly 200");
        let info = store
            .head(&ObjectKey::from(slot.clone()))
            .await
            .expect("head")
            .expect("uploaded");
        store.promote(&slot, &info).await.expect("promote");
        let get = store
            .presign_get(&digest, Utc::now() + Duration::seconds(60))
            .await
            .expect("presign");
        let bytes = reqwest::get(&get)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("body");
        assert_eq!(&bytes[..], content);
        let other_key = get.replace(&digest.to_string(), &"0".repeat(128));
        assert!(
            !reqwest::get(&other_key)
                .await
                .expect("get")
                .status()
                .is_success(),
            "the signature binds the key"
        );
    }
}

pub(crate) mod multipart {
    use bytes::Bytes;
    use futures_util::StreamExt;
    use tooltool_ports::{BlobError, BlobStore, ByteStream};

    pub(crate) const MIB: u64 = 1024 * 1024;

    #[test]
    fn parts_fit_s3s_limit_on_their_number() {
        for (size, min, part) in [
            (50 * 1024 * MIB, 8 * MIB, 8 * MIB),
            (78 * 1024 * MIB, 8 * MIB, 8 * MIB),
            (5 * 1024 * 1024 * MIB, 8 * MIB, 525 * MIB),
            (5 * 1024 * 1024 * MIB, 512 * MIB, 525 * MIB),
            (6 * 1024 * MIB, 512 * MIB, 512 * MIB),
        ] {
            let got = crate::write::part_size(size, min);
            assert_eq!(got, part, "{size} bytes, at least {min}");
            assert!(size.div_ceil(got) <= crate::write::MAX_PARTS);
        }
    }

    pub(crate) fn content() -> Vec<u8> {
        // Three parts: two of S3's smallest (5 MiB), then a short one.
        (0..(10 * MIB + 1000)).map(|i| (i % 251) as u8).collect()
    }

    pub(crate) fn chunks(bytes: &[u8], then_fail: bool) -> ByteStream {
        let mut items: Vec<Result<Bytes, BlobError>> = bytes
            .chunks(64 * 1024)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        if then_fail {
            items.push(Err(BlobError::interrupted("sender went away")));
        }
        Box::pin(futures_util::stream::iter(items))
    }

    pub(crate) async fn read(store: &crate::S3Store, key: &str) -> Vec<u8> {
        let mut body = store.read(key).await.expect("get");
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk.expect("chunk"));
        }
        out
    }

    /// Part files of unfinished multipart uploads on the test server.
    fn open_uploads(root: &std::path::Path) -> Vec<String> {
        std::fs::read_dir(root)
            .expect("root")
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter(|n| n.starts_with(".upload_id-"))
            .collect()
    }

    /// Above the single-request limit, PUTs and server-side copies go in
    /// parts; a failed one is aborted and leaves nothing. (Short keys:
    /// s3s-fs names its multipart files after the key, and a final key's
    /// name would exceed the file system's 255 bytes.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_objects_go_in_parts_and_failures_leave_nothing() {
        let root = crate::testing::tempfile_dir();
        let (east, west) = crate::tests::contract::pair_in(&root).await;
        let (east, west) = (
            east.with_multipart(6 * MIB, 5 * MIB),
            west.with_multipart(6 * MIB, 5 * MIB),
        );
        let content = content();
        let size = content.len() as u64;
        east.write("big", size, chunks(&content, false))
            .await
            .expect("multipart put");
        let info = east.head_key("big").await.expect("head").expect("exists");
        assert_eq!(info.size, size);
        assert!(info.etag.contains("-3"), "three parts: {}", info.etag);
        assert_eq!(read(&east, "big").await, content);

        let source = east.copy_source().expect("copy source");
        west.copy(&source, "big", size)
            .await
            .expect("multipart copy");
        assert_eq!(read(&west, "big").await, content);

        let failed = east.write("broken", size, chunks(&content[..6 * MIB as usize], true));
        assert!(matches!(failed.await, Err(BlobError::Interrupted(_))));
        let short = east.write(
            "short",
            size,
            chunks(&content[..6 * MIB as usize + 1], false),
        );
        assert!(matches!(short.await, Err(BlobError::Interrupted(_))));
        let missing = west.copy(&source, "missing", size);
        assert!(matches!(missing.await, Err(BlobError::NotFound)));
        for key in ["broken", "short", "missing"] {
            assert_eq!(east.head_key(key).await.expect("head"), None, "{key}");
            assert_eq!(west.head_key(key).await.expect("head"), None, "{key}");
        }
        assert_eq!(
            open_uploads(&root),
            Vec::<String>::new(),
            "every failed upload aborted"
        );
    }

    /// Stores of another domain (other endpoint or account) are refused,
    /// so the caller streams instead.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn copies_only_within_one_domain() {
        let (east, _) = crate::tests::contract::pair().await;
        let (elsewhere, _) = crate::tests::contract::pair().await;
        let foreign = elsewhere.copy_source().expect("copy source");
        assert_ne!(Some(&foreign), east.copy_source().as_ref());
        assert!(matches!(
            east.copy(&foreign, "any", 1).await,
            Err(BlobError::OtherDomain(_))
        ));
    }

    /// A store that accepts connections and never answers is given up on
    /// after the first-byte timeout of each attempt: one line saying so,
    /// unavailable (retried later), never a hang.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_that_never_answers_is_unavailable_not_a_hang() {
        use std::time::{Duration, Instant};
        // The kernel completes the handshakes; nothing ever reads them.
        let hole = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let endpoint = format!("http://{}", hole.local_addr().expect("addr"));
        let account =
            crate::Account::new(Some(&endpoint), "AK", "SK").with_timeouts(crate::Timeouts {
                connect: Duration::from_millis(500),
                first_byte: Duration::from_millis(300),
            });
        let region = tooltool_domain::RegionName::parse("us-east-1").expect("valid");
        let signer = tooltool_domain::UrlSigner::new(&region, "http://tooltool.test", b"secret");
        let store = crate::S3Store::new(region, "tooltool", &account, signer);
        let started = Instant::now();
        let e = store.head_key("any").await.expect_err("no answer");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert!(matches!(e, BlobError::Unavailable(_)), "{e:?}");
        let line = tooltool_ports::Chain(&e).to_string();
        assert!(
            line.contains("S3 head object on bucket tooltool: no answer from the store"),
            "{line}"
        );
        assert_eq!(line.lines().count(), 1, "{line}");
        drop(hole);
    }
}
