//! Every route's parsing: what reaches the driving port from a request,
//! what is refused before it, and how results are answered.

mod support;

use chrono::DateTime;
use mockall::predicate::eq;
use support::{client, digest, parts, problem};
use tooltool_domain::{DeclaredFile, Digest, PatchOp, Principal, RegionName, ScopeSet, Visibility};
use tooltool_ports::{
    BatchRecord, ByteRange, CreatedBatchView, FileRecord, MockToolTool, Opened, UploadProgress,
};

fn region(name: &str) -> RegionName {
    RegionName::parse(name).expect("valid")
}

fn file(content: &[u8]) -> FileRecord {
    FileRecord {
        digest: digest(content),
        size: content.len() as u64,
        visibility: Visibility::Public,
        instances: vec![region("east")],
    }
}

fn batch(id: i64) -> BatchRecord {
    BatchRecord {
        id,
        uploaded: DateTime::from_timestamp(1_800_000_000, 0).expect("valid"),
        author: "alice".into(),
        message: "Bug 1 - m".into(),
        files: vec![("f.bin".into(), file(b"f"))],
    }
}

/// Digests are parsed by the route: a bad one never reaches the service.
#[tokio::test]
async fn bad_digests_are_400_before_any_use_case() {
    let cli = client(MockToolTool::new());
    for path in [
        "/sha512/invalid",
        "/file/sha512/xyz",
        "/upload/complete/sha512/XYZ",
        &format!("/file/sha512/{}", "A".repeat(128)),
    ] {
        assert_eq!(
            problem(cli.get(path).send().await, 400).await,
            "Invalid sha512 digest",
            "{path}"
        );
    }
    let patch = cli
        .patch("/file/sha512/bad")
        .content_type("application/json")
        .body("[]")
        .send()
        .await;
    assert_eq!(problem(patch, 400).await, "Invalid sha512 digest");
}

/// A download is a 302 to the service's URL, with the original's page;
/// a region that cannot be one is no preference.
#[tokio::test]
async fn downloads_redirect_and_pass_the_region_preference() {
    let d = digest(b"x");
    let mut service = MockToolTool::new();
    for (passed, times) in [(Some(region("west")), 1), (None, 2)] {
        let d = d.clone();
        service
            .expect_download()
            .withf(move |p, digest, r| p.is_anonymous() && *digest == d && *r == passed)
            .times(times)
            .returning(|_, _, _| Ok("https://store/x?a=1&b=\"2\"".into()));
    }
    let cli = client(service);
    for given in ["?region=west", "?region=Not%20a%20region", ""] {
        let resp = cli.get(format!("/sha512/{d}{given}")).send().await;
        let (status, headers) = (resp.0.status(), resp.0.headers().clone());
        let page = resp.0.into_body().into_string().await.expect("body");
        assert_eq!(status, 302, "{given}");
        assert_eq!(headers["location"], "https://store/x?a=1&b=\"2\"");
        assert!(
            headers["content-type"]
                .to_str()
                .is_ok_and(|t| t.starts_with("text/html"))
        );
        assert!(
            page.contains(r#"<a href="https://store/x?a=1&amp;b=&quot;2&quot;">"#),
            "{page}"
        );
    }
}

/// `/tooltool.py` redirects to the configured client script, for anyone,
/// without calling a use case (the mock expects nothing).
#[tokio::test]
async fn the_client_script_redirects_to_its_configured_url() {
    let cli = client(MockToolTool::new());
    for method in ["GET", "HEAD"] {
        let resp = cli
            .request(method.parse().expect("method"), "/tooltool.py")
            .send()
            .await;
        assert_eq!(resp.0.status(), 302, "{method}");
        assert_eq!(
            resp.0.headers()["location"],
            tooltool_http::UPSTREAM_CLIENT_SCRIPT,
            "{method}"
        );
    }
}

#[tokio::test]
async fn batch_searches_parse_q_before_and_limit() {
    let mut service = MockToolTool::new();
    service
        .expect_search_batches()
        .with(eq("gcc".to_owned()), eq(Some(42)), eq(Some(10)))
        .times(1)
        .returning(|_, _, _| Ok(vec![batch(41)]));
    service
        .expect_search_batches()
        .with(eq(String::new()), eq(None), eq(None))
        .times(1)
        .returning(|_, _, _| Ok(vec![]));
    let cli = client(service);
    let (status, _, body) = parts(cli.get("/upload?q=gcc&before=42&limit=10").send().await).await;
    assert_eq!(status, 200);
    let body = body.expect("json");
    assert_eq!(body["result"][0]["id"], 41);
    assert_eq!(body["result"][0]["uploaded"], "2027-01-15T08:00:00.000000Z");
    assert_eq!(body["result"][0]["files"]["f.bin"]["has_instances"], true);
    assert_eq!(parts(cli.get("/upload?q=").send().await).await.0, 200);
    for (path, detail) in [
        ("/upload", "the query parameter 'q' is required"),
        ("/upload?q=x&before=yesterday", "before must be a batch id"),
        ("/upload?q=x&limit=ten", "limit must be a positive integer"),
        ("/upload?q=x&limit=-1", "limit must be a positive integer"),
    ] {
        assert!(
            problem(cli.get(path).send().await, 400)
                .await
                .starts_with(detail),
            "{path}"
        );
    }
}

#[tokio::test]
async fn file_searches_parse_q_after_and_limit() {
    let after = digest(b"after");
    let mut service = MockToolTool::new();
    service
        .expect_search_files()
        .with(eq("clang".to_owned()), eq(Some(after.clone())), eq(Some(5)))
        .times(1)
        .returning(|_, _, _| Ok(vec![file(b"clang")]));
    let cli = client(service);
    let (status, _, body) = parts(
        cli.get(format!("/file?q=clang&after={after}&limit=5"))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body.expect("json")["result"][0]["digest"],
        digest(b"clang").to_string()
    );
    assert_eq!(
        problem(cli.get("/file?q=x&after=zzz").send().await, 400).await,
        "Invalid sha512 digest"
    );
}

#[tokio::test]
async fn batch_ids_that_are_not_numbers_are_404() {
    let mut service = MockToolTool::new();
    service
        .expect_get_batch()
        .with(eq(42))
        .times(1)
        .returning(|id| Ok(batch(id)));
    let cli = client(service);
    assert_eq!(parts(cli.get("/upload/42").send().await).await.0, 200);
    for id in ["abc", "99999999999999999999"] {
        assert!(
            problem(cli.get(format!("/upload/{id}")).send().await, 404)
                .await
                .starts_with("no upload batch with id"),
            "{id}"
        );
    }
}

/// A credential is resolved by the service from what Hawk signs; the
/// principal it names makes the batch, parsed from the body.
#[tokio::test]
async fn batches_are_created_by_the_authenticated_principal() {
    let d = digest(b"content");
    let body = format!(
        r#"{{"message":"Bug 1","files":{{"a.bin":{{"size":7,"digest":"{d}","algorithm":"sha512","visibility":"internal"}}}}}}"#
    );
    let mut service = MockToolTool::new();
    let expected_body = body.clone();
    service
        .expect_authenticate()
        .withf(move |r| {
            r.method == "POST"
                && r.resource == "/upload?region=west"
                && r.credentials == "Hawk id=\"c\""
                && r.content_type.as_deref() == Some("application/json")
                && r.body.as_deref() == Some(expected_body.as_bytes())
                && (r.host.as_str(), r.port) == ("tooltool.example.com", 8443)
        })
        .times(1)
        .returning(|_| Ok(Principal::authenticated("uploader", ScopeSet::new(["s"]))));
    let declared = DeclaredFile {
        filename: "a.bin".into(),
        digest: d.clone(),
        size: 7,
        visibility: Visibility::Internal,
    };
    service
        .expect_create_batch()
        .withf(move |p, request, r| {
            p.id() == Some("uploader")
                && request.message == "Bug 1"
                && !request.author_given
                && request.files == [declared.clone()]
                && *r == Some(RegionName::parse("west").expect("valid"))
        })
        .times(1)
        .returning(|_, _, _| {
            Ok(CreatedBatchView {
                batch: BatchRecord {
                    files: vec![(
                        "a.bin".into(),
                        FileRecord {
                            instances: vec![],
                            ..file(b"content")
                        },
                    )],
                    ..batch(7)
                },
                put_urls: [(digest(b"content"), "https://put/a".to_owned())].into(),
            })
        });
    let cli = client(service);
    let (status, _, answer) = parts(
        cli.post("/upload?region=west")
            .header("Authorization", "Hawk id=\"c\"")
            .header("Host", "tooltool.example.com:8443")
            .content_type("application/json")
            .body(body)
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let answer = answer.expect("json");
    assert_eq!(answer["result"]["id"], 7);
    assert_eq!(
        answer["result"]["files"]["a.bin"]["put_url"],
        "https://put/a"
    );
}

#[tokio::test]
async fn upload_complete_is_202_or_409_with_a_retry_delay() {
    let (done, pending) = (digest(b"done"), digest(b"pending"));
    let mut service = MockToolTool::new();
    service
        .expect_upload_complete()
        .with(eq(done.clone()))
        .returning(|_| Ok(UploadProgress::Done));
    service
        .expect_upload_complete()
        .with(eq(pending.clone()))
        .returning(|_| {
            Ok(UploadProgress::Pending {
                retry_after_secs: 7,
            })
        });
    let cli = client(service);
    let (status, _, body) = parts(
        cli.get(format!("/upload/complete/sha512/{done}"))
            .send()
            .await,
    )
    .await;
    assert_eq!((status, body), (202, Some(serde_json::json!({}))));
    let resp = cli
        .get(format!("/upload/complete/sha512/{pending}"))
        .send()
        .await;
    assert_eq!(resp.0.headers()["x-retry-after"], "7");
    assert!(problem(resp, 409).await.contains("not verified yet"));
}

#[tokio::test]
async fn patches_parse_operations_in_order() {
    let d = digest(b"x");
    let mut service = MockToolTool::new();
    service
        .expect_authenticate()
        .returning(|_| Ok(Principal::authenticated("m", ScopeSet::new(["s"]))));
    service
        .expect_patch_file()
        .withf(|p, _, ops| {
            p.id() == Some("m")
                && *ops
                    == [
                        PatchOp::SetVisibility(Visibility::Internal),
                        PatchOp::DeleteInstances,
                    ]
        })
        .times(1)
        .returning(|_, _, _| Ok(file(b"x")));
    let cli = client(service);
    let resp = cli
        .patch(format!("/file/sha512/{d}"))
        .header("Authorization", "Bearer t")
        .content_type("application/json")
        .body(r#"[{"op":"set_visibility","visibility":"internal"},{"op":"delete_instances"}]"#)
        .send()
        .await;
    let (status, _, body) = parts(resp).await;
    assert_eq!(status, 200);
    assert_eq!(
        body.expect("json")["instances"],
        serde_json::json!(["east"])
    );
}

#[tokio::test]
async fn the_heartbeat_names_failing_checks_without_their_cause() {
    let mut service = MockToolTool::new();
    service.expect_health().returning(|| {
        vec![
            ("database".into(), Ok(())),
            ("taskcluster".into(), Err("tc.internal refused".into())),
        ]
    });
    let cli = client(service);
    let resp = cli.get("/__heartbeat__").send().await;
    let (status, _, body) = parts(resp).await;
    let body = body.expect("json");
    assert_eq!(status, 503);
    assert_eq!(body["status"], 503, "the error shape");
    assert_eq!(body["detail"], "unhealthy: taskcluster");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["taskcluster"], "error");
    assert!(!body.to_string().contains("tc.internal"));
}

#[tokio::test]
async fn permissions_show_the_principal() {
    let mut service = MockToolTool::new();
    service
        .expect_authenticate()
        .returning(|_| Ok(Principal::authenticated("me", ScopeSet::new(["a", "b"]))));
    let cli = client(service);
    let (_, _, anonymous) = parts(cli.get("/__permissions__").send().await).await;
    assert_eq!(
        anonymous.expect("json"),
        serde_json::json!({"clientId": null, "scopes": [], "anonymousPublicDownload": true})
    );
    let (_, _, me) = parts(
        cli.get("/__permissions__")
            .header("Authorization", "Bearer t")
            .send()
            .await,
    )
    .await;
    assert_eq!(me.expect("json")["scopes"], serde_json::json!(["a", "b"]));
}

/// The self-served routes hand the key text, query and range to the
/// service and answer exactly 200 (the Mozilla client's rule) or 206.
#[tokio::test]
async fn blob_routes_pass_key_query_and_range() {
    let d: Digest = digest(b"0123456789");
    let key = format!("pending/{d}/0123456789abcdef");
    let mut service = MockToolTool::new();
    let k = key.clone();
    service
        .expect_receive_blob()
        .withf(move |r, key, query, _| {
            *r == RegionName::parse("east").expect("valid")
                && key == k
                && query == "expires=1&size=10&signature=ab"
        })
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    let served = d.clone();
    service
        .expect_serve_blob()
        .withf(|_, _, _, range| *range == ByteRange::Inclusive(2, 4))
        .times(1)
        .returning(move |_, _, _, _| {
            Ok(Opened {
                digest: served.clone(),
                size: 10,
                range: Some((2, 4)),
                body: Box::pin(futures_util::stream::iter(vec![Ok(
                    bytes::Bytes::from_static(b"234"),
                )])),
            })
        });
    let cli = client(service);
    let resp = cli
        .put(format!("/blob/east/{key}?expires=1&size=10&signature=ab"))
        .body("0123456789")
        .send()
        .await;
    assert_eq!(resp.0.status(), 200);
    assert_eq!(resp.0.into_body().into_string().await.expect("body"), "");
    let resp = cli
        .get(format!("/blob/east/sha512/{d}?expires=1&signature=ab"))
        .header("Range", "bytes=2-4")
        .send()
        .await;
    let headers = resp.0.headers().clone();
    assert_eq!(resp.0.status(), 206);
    assert_eq!(headers["content-range"], "bytes 2-4/10");
    assert_eq!(headers["etag"], format!("\"{d}\""));
    assert_eq!(headers["content-length"], "3");
    assert_eq!(resp.0.into_body().into_string().await.expect("body"), "234");
    // A region that cannot be one names nothing; the service is not asked.
    let resp = cli.put("/blob/No%20Region/x").body("x").send().await;
    problem(resp, 404).await;
}
