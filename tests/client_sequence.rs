//! The Mozilla client's exact sequence (PROTOCOL.md §5) over a real socket,
//! and the seed document's three checks.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tooltool_tests::{batch_body, files_under, put, put_url, sha512_hex, spawn_app};

const FORBIDDEN: &str = "You don't have the permission to access the requested resource. It is either read-protected or not readable by the server.";

async fn json_of(resp: reqwest::Response) -> Value {
    assert_eq!(
        resp.headers()["content-type"],
        "application/json",
        "JSON is served as exactly application/json"
    );
    resp.json().await.expect("json body")
}

fn assert_problem(body: &Value, status: u16, detail: &str) {
    let reason = StatusCode::from_u16(status)
        .expect("status")
        .canonical_reason()
        .expect("reason");
    let title = format!("{status} {reason}: {detail}");
    assert_eq!(body["type"], "about:blank");
    assert_eq!(body["instance"], "about:blank");
    assert_eq!(body["status"], status);
    assert_eq!(body["detail"], detail);
    assert_eq!(body["title"], title);
    assert_eq!(
        body["error"]["name"],
        format!("{status} {reason}"),
        "tooltool.py logs `name: description`, so name is the status line alone"
    );
    assert_eq!(
        body["error"]["description"], detail,
        "tooltool.py reads error.description"
    );
}

#[tokio::test]
async fn the_mozilla_client_sequence_works_end_to_end() {
    let app = spawn_app().await;
    let token = app.token("releng-bot", &["upload/*", "download/internal", "manage"]);
    let tool: &[u8] = b"#!/bin/sh\necho a toolchain\n";
    let secret: &[u8] = b"internal sdk bytes";
    let body = batch_body(
        "Bug 1 - new toolchain",
        &[("tool.sh", tool, "public"), ("sdk.tar", secret, "internal")],
    );

    // 1. POST /upload with the credential.
    let resp = app
        .http
        .post(app.at("upload"))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 200);
    let batch = json_of(resp).await;
    let result = &batch["result"];
    assert!(result["id"].as_i64().is_some_and(|id| id > 0));
    assert_eq!(result["author"], "releng-bot");
    assert_eq!(result["message"], "Bug 1 - new toolchain");
    assert!(
        result["uploaded"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.contains('T'))
    );
    for (name, content, visibility) in
        [("tool.sh", tool, "public"), ("sdk.tar", secret, "internal")]
    {
        let f = &result["files"][name];
        assert_eq!(f["size"], content.len(), "{name}");
        assert_eq!(f["digest"], sha512_hex(content));
        assert_eq!(f["algorithm"], "sha512");
        assert_eq!(f["visibility"], visibility);
        assert_eq!(f["has_instances"], false);
        let put_url = f["put_url"].as_str().expect("put_url");
        assert!(
            put_url.starts_with(&app.url),
            "put_url on this server: {put_url}"
        );

        // 2. PUT without credentials, exactly as the client does.
        let put = put(put_url, content).await;
        assert_eq!(put.status(), 200, "the client accepts exactly 200");

        // 3. upload/complete until 202.
        let done = app
            .http
            .get(app.at(&format!("upload/complete/sha512/{}", sha512_hex(content))))
            .bearer_auth(&token)
            .send()
            .await
            .expect("complete");
        assert_eq!(done.status(), 202);
        assert_eq!(json_of(done).await, json!({}));
    }

    // 4. fetch: GET with the credential, follow the redirect WITHOUT it.
    for content in [tool, secret] {
        let digest = sha512_hex(content);
        let resp = app
            .http
            .get(app.at(&format!("sha512/{digest}")))
            .bearer_auth(&token)
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status(), 302);
        let location = resp.headers()["location"]
            .to_str()
            .expect("ascii")
            .to_owned();
        let bytes = reqwest::get(&location).await.expect("follow");
        assert_eq!(bytes.status(), 200);
        assert_eq!(
            bytes.headers()["content-length"],
            content.len().to_string().as_str()
        );
        assert_eq!(bytes.headers()["etag"], format!("\"{digest}\"").as_str());
        assert_eq!(bytes.headers()["cache-control"], "private, immutable");
        let got = bytes.bytes().await.expect("body");
        assert_eq!(&got[..], content);
        assert_eq!(sha512_hex(&got), digest);
    }

    // 5. change-visibility.
    let digest = sha512_hex(tool);
    let resp = app
        .http
        .patch(app.at(&format!("file/sha512/{digest}")))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body(r#"[{"op":"set_visibility","visibility":"internal"}]"#)
        .send()
        .await
        .expect("patch");
    assert_eq!(resp.status(), 200);
    let f = json_of(resp).await;
    assert_eq!(f["visibility"], "internal");
    assert_eq!(f["instances"], json!(["local"]));
    let anon = app.get(&format!("sha512/{digest}")).await;
    assert_eq!(anon.status(), 403, "internal now");

    // 6. delete.
    let resp = app
        .http
        .patch(app.at(&format!("file/sha512/{digest}")))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body(r#"[{"op":"delete_instances"}]"#)
        .send()
        .await
        .expect("patch");
    assert_eq!(resp.status(), 200);
    let f = json_of(resp).await;
    assert_eq!(f["has_instances"], false);
    assert_eq!(f["instances"], json!([]));
    let gone = app
        .http
        .get(app.at(&format!("sha512/{digest}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get");
    assert_eq!(gone.status(), 404);
    assert!(
        !files_under(&app.data_path())
            .iter()
            .any(|p| p.ends_with(&digest)),
        "the stored copy is deleted"
    );
    // The batch history stays.
    let b = app.get(&format!("upload/{}", result["id"])).await;
    assert_eq!(json_of(b).await["files"]["tool.sh"]["digest"], digest);
}

#[tokio::test]
async fn the_seed_checks_hold_exactly() {
    let app = spawn_app().await;
    let token = app.token("releng", &["upload/*"]);
    let public: &[u8] = b"public artifact";
    let internal: &[u8] = b"internal artifact";
    let body = batch_body(
        "seed",
        &[("p", public, "public"), ("i", internal, "internal")],
    );
    let batch = app.create_batch(&token, &body, None).await;
    for (name, content) in [("p", public), ("i", internal)] {
        assert_eq!(put(&put_url(&batch, name), content).await.status(), 200);
    }

    // Known public sha512 redirects (302), with an HTML body like the original.
    let resp = app.get(&format!("sha512/{}", sha512_hex(public))).await;
    assert_eq!(resp.status(), 302);
    assert!(resp.headers().contains_key("location"));
    assert!(resp.text().await.expect("body").contains("Redirecting..."));

    // Known internal sha512 stays protected (403) with the seed's text.
    let resp = app.get(&format!("sha512/{}", sha512_hex(internal))).await;
    assert_eq!(resp.status(), 403);
    assert_problem(&json_of(resp).await, 403, FORBIDDEN);

    // Invalid sha512 is a 400.
    let resp = app.get("sha512/invalid").await;
    assert_eq!(resp.status(), 400);
    assert_problem(&json_of(resp).await, 400, "Invalid sha512 digest");

    // HEAD answers the same without a body.
    let resp = app
        .http
        .head(app.at(&format!("sha512/{}", sha512_hex(public))))
        .send()
        .await
        .expect("head");
    assert_eq!(resp.status(), 302);
    assert!(resp.headers().contains_key("location"));
}
