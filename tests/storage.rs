//! Uploads racing, replication between local regions, region preference,
//! byte ranges, search, and the background jobs driven by the test clock.

use serde_json::{Value, json};
use tooltool_tests::{
    TestApp, batch_body, files_under, put, put_url, sha512_hex, spawn_app, spawn_with,
};

async fn get_json(app: &TestApp, path: &str) -> Value {
    let resp = app.get(path).await;
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.expect("json")
}

#[tokio::test]
async fn present_files_get_no_put_url_and_racing_uploads_both_succeed() {
    let app = spawn_app().await;
    let token = app.token("u", &["upload/*"]);
    let content: &[u8] = b"raced content";
    let body = batch_body("race", &[("r.bin", content, "public")]);
    let (a, b) = tokio::join!(
        app.create_batch(&token, &body, None),
        app.create_batch(&token, &body, None)
    );
    let urls = [put_url(&a, "r.bin"), put_url(&b, "r.bin")];
    assert_ne!(urls[0], urls[1], "each batch gets its own upload slot");
    let (sa, sb) = tokio::join!(put(&urls[0], content), put(&urls[1], content));
    assert_eq!(
        (sa.status().as_u16(), sb.status().as_u16()),
        (200, 200),
        "both uploads succeed"
    );
    let files = get_json(&app, "file?q=r.bin").await;
    assert_eq!(
        files["result"].as_array().map(Vec::len),
        Some(1),
        "one file"
    );
    assert_eq!(files["result"][0]["has_instances"], true);
    let d = sha512_hex(content);
    let f = get_json(&app, &format!("file/sha512/{d}")).await;
    assert_eq!(f["instances"], json!(["local"]), "one instance");
    let stored: Vec<_> = files_under(&app.data_path().join("objects"));
    assert_eq!(
        stored,
        vec![format!("sha512/{d}")],
        "one object, no staging leftovers"
    );

    let again = app
        .create_batch(
            &token,
            &batch_body("again", &[("copy.bin", content, "public")]),
            None,
        )
        .await;
    let f = &again["result"]["files"]["copy.bin"];
    assert!(f.get("put_url").is_none(), "already on the server: {f}");
    assert_eq!(f["has_instances"], true);
}

/// Twenty slots of one digest PUT at once, ten times: the slots share the
/// digest's staging directory, which a promotion removes once empty; no PUT
/// may fail for another's promotion.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_of_one_digest_all_succeed() {
    let app = spawn_app().await;
    let token = app.token("u", &["upload/*"]);
    for round in 0..10 {
        let content = format!("one digest, twenty slots, round {round}").into_bytes();
        let body = batch_body("many slots", &[("same.bin", &content, "public")]);
        let mut urls = Vec::new();
        for _ in 0..20 {
            urls.push(put_url(
                &app.create_batch(&token, &body, None).await,
                "same.bin",
            ));
        }
        let puts = urls.iter().map(|url| put(url, &content));
        let statuses: Vec<u16> = futures_util::future::join_all(puts)
            .await
            .iter()
            .map(|r| r.status().as_u16())
            .collect();
        assert_eq!(statuses, vec![200; 20], "round {round}");
    }
}

#[tokio::test]
async fn replication_fills_every_region_and_region_preference_is_honoured() {
    let app = spawn_with(&["--local-regions", "east:{dir}/east;west:{dir}/west"]).await;
    let token = app.token("u", &["upload/*"]);
    let content: &[u8] = b"replicated artifact";
    let d = sha512_hex(content);
    let created = app
        .create_batch(
            &token,
            &batch_body("m", &[("a", content, "public")]),
            Some("west"),
        )
        .await;
    let url = &put_url(&created, "a");
    assert!(
        url.contains("/blob/west/"),
        "uploads go to the requested region: {url}"
    );
    assert_eq!(put(url, content).await.status().as_u16(), 200);
    assert_eq!(
        get_json(&app, &format!("file/sha512/{d}")).await["instances"],
        json!(["west"])
    );

    // Before replication, a preference for east falls back to west.
    let loc = app.location(&format!("sha512/{d}?region=east")).await;
    assert!(loc.contains("/blob/west/"), "{loc}");

    let report = tooltool::jobs::Job::Replicate
        .run_once(&app.service)
        .await
        .expect("replicate");
    assert_eq!((report.done, report.failed), (1, 0));
    assert_eq!(
        get_json(&app, &format!("file/sha512/{d}")).await["instances"],
        json!(["east", "west"])
    );
    assert!(app.data_path().join("east/sha512").join(&d).exists());
    let again = tooltool::jobs::Job::Replicate
        .run_once(&app.service)
        .await
        .expect("replicate");
    assert_eq!(again.done, 0, "nothing left to replicate");

    for region in ["east", "west"] {
        let loc = app.location(&format!("sha512/{d}?region={region}")).await;
        assert!(loc.contains(&format!("/blob/{region}/")), "{region}: {loc}");
        let bytes = reqwest::get(&loc)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("body");
        assert_eq!(&bytes[..], content);
    }
    // Unknown preferences are ignored, not errors.
    let resp = app.get(&format!("sha512/{d}?region=mars&other=1")).await;
    assert_eq!(resp.status(), 302);

    // delete_instances empties every region.
    let manage = app.token("m", &["manage"]);
    let resp = app
        .http
        .patch(app.at(&format!("file/sha512/{d}")))
        .bearer_auth(&manage)
        .json(&json!([{"op": "delete_instances"}]))
        .send()
        .await
        .expect("patch");
    assert_eq!(resp.status(), 200);
    assert!(!app.data_path().join("east/sha512").join(&d).exists());
    assert!(!app.data_path().join("west/sha512").join(&d).exists());
}

#[tokio::test]
async fn downloads_support_ranges_and_head() {
    let app = spawn_app().await;
    let token = app.token("u", &["upload/*"]);
    let content: &[u8] = b"0123456789abcdef";
    app.upload(&token, "r", content, "public").await;
    let loc = app
        .location(&format!("sha512/{}", sha512_hex(content)))
        .await;
    let client = reqwest::Client::new();
    let resp = client
        .get(&loc)
        .header("Range", "bytes=2-5")
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.headers()["content-range"], "bytes 2-5/16");
    assert_eq!(resp.headers()["accept-ranges"], "bytes");
    assert_eq!(&resp.bytes().await.expect("body")[..], b"2345");
    let resp = client
        .get(&loc)
        .header("Range", "bytes=-3")
        .send()
        .await
        .expect("get");
    assert_eq!(&resp.bytes().await.expect("body")[..], b"def");
    let resp = client
        .get(&loc)
        .header("Range", "bytes=99-")
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 416);
    let resp = client.head(&loc).send().await.expect("head");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-length"], "16");
}

#[tokio::test]
async fn search_and_batch_lookup() {
    let app = spawn_app().await;
    let alice = app.token("alice", &["upload/*"]);
    let bob = app.token("bob", &["upload/*"]);
    app.create_batch(
        &alice,
        &batch_body("gcc 13 for linux", &[("gcc-13.tar.xz", b"gcc", "public")]),
        None,
    )
    .await;
    let b = app
        .create_batch(
            &bob,
            &batch_body("100% clang", &[("clang_17.tar.xz", b"clang", "internal")]),
            None,
        )
        .await;
    let names = |v: &Value| {
        v["result"]
            .as_array()
            .expect("array")
            .iter()
            .map(|b| b["message"].as_str().expect("message").to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&get_json(&app, "upload?q=").await),
        ["100% clang", "gcc 13 for linux"]
    );
    assert_eq!(names(&get_json(&app, "upload?q=bob").await), ["100% clang"]);
    assert_eq!(
        names(&get_json(&app, "upload?q=%25").await),
        ["100% clang"],
        "% is literal"
    );
    assert!(names(&get_json(&app, "upload?q=nothing").await).is_empty());
    let files = get_json(&app, "file?q=_17").await;
    assert_eq!(
        files["result"].as_array().map(Vec::len),
        Some(1),
        "_ is literal"
    );
    assert!(
        files["result"][0].get("instances").is_none(),
        "search results carry no instances"
    );
    let prefix = &sha512_hex(b"gcc")[..8];
    assert_eq!(
        get_json(&app, &format!("file?q={prefix}")).await["result"][0]["digest"],
        sha512_hex(b"gcc")
    );
    let id = b["result"]["id"].as_i64().expect("id");
    let batch = get_json(&app, &format!("upload/{id}")).await;
    assert_eq!(batch["author"], "bob");
    assert_eq!(batch["files"]["clang_17.tar.xz"]["visibility"], "internal");
    assert!(batch.get("result").is_none(), "GET /upload/{{id}} is bare");
}

#[tokio::test]
async fn abandoned_slots_and_stray_staging_objects_are_swept() {
    let app = spawn_app().await;
    let token = app.token("u", &["upload/*"]);
    app.create_batch(
        &token,
        &batch_body("never uploaded", &[("n", b"never", "public")]),
        None,
    )
    .await;
    let d = sha512_hex(b"never");
    // A stray staging object nobody owns (e.g. left by a crash).
    let stray_dir = app
        .data_path()
        .join("objects/pending")
        .join(sha512_hex(b"stray"));
    std::fs::create_dir_all(&stray_dir).expect("mkdir");
    std::fs::write(stray_dir.join("00000000000000000000000000000000"), b"stray").expect("write");

    // While a transfer could still arrive, complete says "retry".
    app.clock.advance(chrono::Duration::minutes(5));
    let state = app.get(&format!("upload/complete/sha512/{d}")).await;
    assert_eq!(state.status(), 409, "still waiting for the upload");
    let retry: u64 = state.headers()["x-retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("integer seconds");
    assert!((1..=2).contains(&retry));

    // Once nothing can arrive any more, the polling ends with a 400.
    app.clock.advance(chrono::Duration::hours(2));
    let state = app.get(&format!("upload/complete/sha512/{d}")).await;
    assert_eq!(state.status(), 400);
    let body: Value = state.json().await.expect("json");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|t| t.contains("upload it again")),
        "{body}"
    );

    // Within the day, the sweep keeps the slot.
    tooltool::jobs::Job::Sweep
        .run_once(&app.service)
        .await
        .expect("sweep");
    let state = app.get(&format!("upload/complete/sha512/{d}")).await;
    assert_eq!(state.status(), 400, "the slot is still there");

    // A day after its URL expired, the slot is abandoned.
    app.clock.advance(chrono::Duration::hours(22));
    let report = tooltool::jobs::Job::Sweep
        .run_once(&app.service)
        .await
        .expect("sweep");
    assert!(report.done >= 1);
    let state = app.get(&format!("upload/complete/sha512/{d}")).await;
    assert_eq!(state.status(), 202, "nothing pending any more");
    assert!(
        !stray_dir.join("00000000000000000000000000000000").exists(),
        "stray staging object removed"
    );
}

#[tokio::test]
async fn the_verification_job_promotes_staging_objects_left_behind() {
    let app = spawn_app().await;
    let token = app.token("u", &["upload/*"]);
    let content: &[u8] = b"left behind";
    let created = app
        .create_batch(&token, &batch_body("m", &[("f", content, "public")]), None)
        .await;
    let url = put_url(&created, "f");
    // Simulate a process that received the bytes and died before verifying.
    let key = url
        .split("/blob/local/")
        .nth(1)
        .expect("key")
        .split('?')
        .next()
        .expect("key");
    let path = app.data_path().join("objects").join(key);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, content).expect("write");
    let report = tooltool::jobs::Job::Verify
        .run_once(&app.service)
        .await
        .expect("verify");
    assert_eq!(report.done, 1, "{report}");
    let d = sha512_hex(content);
    assert_eq!(
        app.get(&format!("upload/complete/sha512/{d}"))
            .await
            .status(),
        202
    );
    assert_eq!(app.get(&format!("sha512/{d}")).await.status(), 302);
}

#[tokio::test]
async fn searches_paginate() {
    let app = spawn_app().await;
    let token = app.token("pager", &["upload/*"]);
    for i in 0..5 {
        app.upload(
            &token,
            &format!("page-{i}.bin"),
            format!("page {i}").as_bytes(),
            "public",
        )
        .await;
    }
    let first = get_json(&app, "upload?q=page&limit=2").await;
    let ids: Vec<i64> = first["result"]
        .as_array()
        .expect("array")
        .iter()
        .map(|b| b["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids[0] > ids[1], "newest first");
    let next = get_json(&app, &format!("upload?q=page&limit=2&before={}", ids[1])).await;
    let next_ids: Vec<i64> = next["result"]
        .as_array()
        .expect("array")
        .iter()
        .map(|b| b["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(next_ids.len(), 2);
    assert!(next_ids[0] < ids[1]);

    let mut digests = Vec::new();
    let mut after = String::new();
    loop {
        let path = if after.is_empty() {
            "file?q=page-&limit=2".to_owned()
        } else {
            format!("file?q=page-&limit=2&after={after}")
        };
        let page = get_json(&app, &path).await;
        let page: Vec<String> = page["result"]
            .as_array()
            .expect("array")
            .iter()
            .map(|f| f["digest"].as_str().expect("digest").to_owned())
            .collect();
        if page.is_empty() {
            break;
        }
        after = page.last().expect("last").clone();
        digests.extend(page);
    }
    let mut expected: Vec<String> = (0..5)
        .map(|i| sha512_hex(format!("page {i}").as_bytes()))
        .collect();
    expected.sort();
    assert_eq!(digests, expected);

    for bad in [
        "upload?q=&limit=0",
        "upload?q=&limit=1001",
        "upload?q=&limit=x",
        "upload?q=&before=x",
        "file?q=&after=xyz",
    ] {
        let resp = app.get(bad).await;
        assert_eq!(resp.status(), 400, "{bad}");
    }
}
