//! The pages over a mock of the driving port: what each shows, and that
//! every bad input is an HTML page with a 4xx, never a 5xx.

use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use poem::test::{TestClient, TestResponse};
use tooltool_domain::{ContentHasher, Digest, RegionName, Visibility};
use tooltool_ports::{BatchRecord, FileRecord, FileUpload, MockToolTool, UseCaseError};

fn digest(content: &[u8]) -> Digest {
    let mut h = ContentHasher::new();
    h.update(content);
    h.finish().digest
}

fn file(content: &[u8], visibility: Visibility, regions: &[&str]) -> FileRecord {
    FileRecord {
        digest: digest(content),
        size: 1536,
        visibility,
        instances: regions
            .iter()
            .map(|r| RegionName::parse(r).expect("region"))
            .collect(),
    }
}

fn batch(id: i64) -> BatchRecord {
    BatchRecord {
        id,
        uploaded: DateTime::from_timestamp(1_800_000_000, 0).expect("time"),
        author: "alice@example.com".into(),
        message: "Bug 1234 - clang <18>".into(),
        files: vec![
            (
                "clang.tar.zst".into(),
                file(b"clang", Visibility::Public, &["us-east-1"]),
            ),
            ("sdk.zip".into(), file(b"sdk", Visibility::Internal, &[])),
        ],
    }
}

fn client(service: MockToolTool) -> TestClient<impl poem::Endpoint> {
    TestClient::new(tooltool_web::routes(
        Arc::new(service),
        tooltool_web::WebConfig {
            bug_url: "https://bugs.example/?id=".into(),
            public_url: "http://tooltool.test".into(),
            sessions: tooltool_web::Sessions::new(vec![1; 32], Duration::from_secs(3600), false),
        },
    ))
}

async fn page(resp: TestResponse, status: u16) -> String {
    let resp = resp.0;
    assert_eq!(resp.status().as_u16(), status);
    let headers = resp.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().expect("ascii");
    assert!(
        csp.starts_with("default-src 'none'") && !csp.contains("unsafe"),
        "{csp}"
    );
    resp.into_body().into_string().await.expect("body")
}

#[tokio::test]
async fn the_home_page_searches_and_lists_recent_batches() {
    let mut service = MockToolTool::new();
    service
        .expect_search_batches()
        .withf(|q, before, limit| q.is_empty() && *before == Some(50) && *limit == Some(25))
        .returning(|_, _, _| Ok(vec![batch(49), batch(48)]));
    let cli = client(service);
    let html = page(cli.get("/?before=50").send().await, 200).await;
    assert!(
        html.contains(r#"<form class="search" role="search" action="/ui/search" method="get">"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<a href="/ui/batches/49">#49</a>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<a href="https://bugs.example/?id=1234">Bug 1234</a> - clang &lt;18&gt;"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<a href="/?before=48">Older uploads</a>"#),
        "{html}"
    );
    let html = page(cli.get("/?before=soon").send().await, 400).await;
    assert!(
        html.contains("&#39;before&#39; must be a batch id")
            || html.contains("'before' must be a batch id"),
        "{html}"
    );
}

#[tokio::test]
async fn search_shows_files_and_batches_with_the_term_marked() {
    let mut service = MockToolTool::new();
    service
        .expect_search_batches()
        .withf(|q, _, _| q == "clang")
        .returning(|_, _, _| {
            Ok(vec![BatchRecord {
                message: "update clang".into(),
                ..batch(7)
            }])
        });
    service
        .expect_search_files()
        .withf(|q, _, _| q == "clang")
        .returning(|_, _, _| Ok(vec![file(b"clang", Visibility::Public, &["us-east-1"])]));
    service.expect_search_batches().returning(|_, _, _| {
        Err(UseCaseError::invalid(
            "the search term is longer than 1024 bytes",
        ))
    });
    let cli = client(service);
    let html = page(cli.get("/ui/search?q=clang").send().await, 200).await;
    assert!(html.contains("update <mark>clang</mark>"), "{html}");
    assert!(
        html.contains(&format!(r#"<a href="/ui/files/{}">"#, digest(b"clang"))),
        "{html}"
    );
    assert!(
        html.contains(r#"<span class="badge public">public</span>"#),
        "{html}"
    );
    // Paging the files leaves the batches to the first page, and says so.
    let html = page(
        cli.get(format!("/ui/search?q=clang&after={}", digest(b"a")))
            .send()
            .await,
        200,
    )
    .await;
    assert!(
        html.contains(r#"<a href="/ui/search?q=clang">Batches matching from the first page</a>"#),
        "{html}"
    );
    let long = "x".repeat(5000);
    let html = page(cli.get(format!("/ui/search?q={long}")).send().await, 400).await;
    assert!(html.contains("longer than 1024 bytes"), "{html}");
    let html = page(cli.get("/ui/search?q=a&after=nope").send().await, 400).await;
    assert!(html.contains("Invalid sha512 digest"), "{html}");
}

#[tokio::test]
async fn a_batch_page_shows_its_files_and_offers_its_manifest() {
    let mut service = MockToolTool::new();
    service
        .expect_get_batch()
        .withf(|id| *id == 7)
        .returning(|id| Ok(batch(id)));
    service
        .expect_get_batch()
        .returning(|_| Err(UseCaseError::not_found("no upload batch with id 8")));
    let cli = client(service);
    let html = page(cli.get("/ui/batches/7").send().await, 200).await;
    assert!(html.contains("<h1>Batch #7</h1>"), "{html}");
    assert!(html.contains("2027-01-15 08:00 UTC"), "{html}");
    assert!(
        html.contains(r#"<span class="ago">("#),
        "relative date: {html}"
    );
    assert!(html.contains("<td>1.5 KiB</td>"), "{html}");
    assert!(
        html.contains("<td>us-east-1</td><td>verified</td>"),
        "{html}"
    );
    assert!(html.contains("<td>none yet</td><td>pending</td>"), "{html}");
    assert!(
        html.contains(r#"href="/ui/batches/7/manifest.tt" download"#),
        "{html}"
    );

    let resp = cli.get("/ui/batches/7/manifest.tt").send().await.0;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-disposition"],
        "attachment; filename=\"batch-7-manifest.tt\""
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&resp.into_body().into_string().await.expect("body")).expect("JSON");
    assert_eq!(manifest[0]["filename"], "clang.tar.zst");
    assert_eq!(manifest[0]["algorithm"], "sha512");
    assert_eq!(manifest[1]["visibility"], "internal");

    page(cli.get("/ui/batches/8").send().await, 404).await;
    page(cli.get("/ui/batches/not-a-number").send().await, 404).await;
    page(cli.get("/ui/batches/8/manifest.tt").send().await, 404).await;
}

#[tokio::test]
async fn a_file_page_and_every_bad_input_in_html() {
    let known = file(b"clang", Visibility::Internal, &["us-east-1", "us-west-2"]);
    let mut service = MockToolTool::new();
    let d = known.digest.clone();
    service
        .expect_get_file()
        .withf(move |digest| *digest == d)
        .returning(move |_| Ok(known.clone()));
    service
        .expect_get_file()
        .returning(|_| Err(UseCaseError::unavailable("database down")));
    service
        .expect_file_uploads()
        .withf(|_, before, limit| before.is_none() && *limit == Some(25))
        .returning(|_, _, _| {
            Ok(vec![FileUpload {
                batch_id: 7,
                uploaded: DateTime::from_timestamp(1_800_000_000, 0).expect("time"),
                author: "alice@example.com".into(),
                message: "Bug 99 - clang".into(),
                filenames: vec!["clang.tar.zst".into(), "clang2.tar.zst".into()],
            }])
        });
    service
        .expect_file_uploads()
        .returning(|_, _, _| Ok(vec![]));
    let cli = client(service);
    let html = page(
        cli.get(format!("/ui/files/{}", digest(b"clang")))
            .send()
            .await,
        200,
    )
    .await;
    assert!(html.contains("us-east-1, us-west-2"), "{html}");
    assert!(
        html.contains(&format!(
            r#"href="/ui/files/{}/download">Download"#,
            digest(b"clang")
        )),
        "{html}"
    );
    assert!(
        html.contains("&quot;filename&quot;: &quot;clang.tar.zst&quot;"),
        "the manifest entry, under the newest filename: {html}"
    );
    assert!(
        html.contains(
            "<td>clang.tar.zst, clang2.tar.zst</td><td><a href=\"/ui/batches/7\">#7</a></td>"
        ),
        "every batch and filename it was uploaded under: {html}"
    );
    assert!(
        html.contains(r#"<a href="https://bugs.example/?id=99">Bug 99</a>"#),
        "{html}"
    );
    assert!(
        !html.contains("Manage"),
        "no management without a session: {html}"
    );
    let html = page(cli.get("/ui/files/XYZ").send().await, 400).await;
    assert!(html.contains("Invalid sha512 digest"), "{html}");
    // A fault shows a generic sentence, never its cause.
    let html = page(
        cli.get(format!("/ui/files/{}", digest(b"other")))
            .send()
            .await,
        503,
    )
    .await;
    assert!(!html.contains("database down"), "{html}");
    page(cli.get("/ui/nothing/here").send().await, 404).await;
    let css = cli.get("/ui/static/site.css").send().await.0;
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    let js = cli.get("/ui/static/site.js").send().await.0;
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
}

#[test]
fn the_browser_paths_are_the_home_page_and_ui() {
    for (path, browser) in [
        ("/", true),
        ("/ui/search", true),
        ("/ui", true),
        ("/upload", false),
        ("/uix", false),
        ("/file/sha512/x", false),
        ("/sha512/x", false),
    ] {
        assert_eq!(tooltool_web::is_browser_path(path), browser, "{path}");
    }
}
