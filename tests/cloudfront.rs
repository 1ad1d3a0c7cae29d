//! Downloads through CloudFront (`CLOUDFRONT_*`, the original's settings):
//! the Location is the distribution's URL signed with a canned policy for
//! the download expiry, and permission and existence checks answer as
//! without it; a key that cannot sign stops start-up naming the variable.

use clap::Parser;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use tooltool::config::Cli;
use tooltool_ports::Clock;
use tooltool_tests::{sha512_hex, spawn_with};

fn key_path(name: &str) -> String {
    format!(
        "{}/adapters/cloudfront/testdata/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// CloudFront's base64 back to the standard alphabet, decoded.
fn signature_bytes(text: &str) -> Vec<u8> {
    let standard: String = text
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '=',
            '~' => '/',
            c => c,
        })
        .collect();
    openssl::base64::decode_block(&standard).expect("base64")
}

#[tokio::test]
async fn downloads_redirect_to_signed_cloudfront_urls_and_checks_stay() {
    let key = key_path("rsa-2048.pem");
    let app = spawn_with(&[
        "--cloudfront-url",
        "d111111abcdef8.cloudfront.net",
        "--cloudfront-key-id",
        "K2JCJMDEHXQW5F",
        "--cloudfront-private-key",
        &key,
        "--download-expires-in",
        "90",
    ])
    .await;
    let token = app.token("alice", &["upload/public", "upload/internal"]);
    let public = app
        .upload(&token, "pub.bin", b"public bytes", "public")
        .await;
    let internal = app
        .upload(&token, "int.bin", b"internal bytes", "internal")
        .await;

    let location = app.location(&format!("sha512/{public}")).await;
    let expires = app.clock.now().timestamp() + 90;
    let resource = format!("https://d111111abcdef8.cloudfront.net/sha512/{public}");
    let prefix = format!("{resource}?Expires={expires}&Signature=");
    let signature = location
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix("&Key-Pair-Id=K2JCJMDEHXQW5F"))
        .unwrap_or_else(|| panic!("not a canned-policy URL: {location}"));
    // CloudFront checks exactly this: RSA-SHA1 over the canned policy.
    let policy = format!(
        r#"{{"Statement":[{{"Resource":"{resource}","Condition":{{"DateLessThan":{{"AWS:EpochTime":{expires}}}}}}}]}}"#
    );
    let pem = std::fs::read(&key).expect("key");
    let public_key = PKey::public_key_from_pem(
        &PKey::private_key_from_pem(&pem)
            .expect("pem")
            .public_key_to_pem()
            .expect("public"),
    )
    .expect("public key");
    let mut verifier =
        openssl::sign::Verifier::new(MessageDigest::sha1(), &public_key).expect("verifier");
    verifier.update(policy.as_bytes()).expect("update");
    assert!(
        verifier
            .verify(&signature_bytes(signature))
            .expect("verify"),
        "the signature covers the canned policy"
    );

    // The same answers as without CloudFront for everything else.
    let status = |path: String| {
        let app = &app;
        async move { app.get(&path).await.status() }
    };
    assert_eq!(status(format!("sha512/{internal}")).await, 403);
    let reader = app.token("bob", &["download/internal"]);
    let resp = app
        .http
        .get(app.at(&format!("sha512/{internal}")))
        .bearer_auth(&reader)
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 302);
    assert!(
        resp.headers()["location"]
            .to_str()
            .expect("ascii")
            .starts_with(&format!(
                "https://d111111abcdef8.cloudfront.net/sha512/{internal}?Expires="
            ))
    );
    assert_eq!(
        status(format!("sha512/{}", sha512_hex(b"absent"))).await,
        404
    );
    assert_eq!(status("sha512/not-a-digest".to_owned()).await, 400);
}

/// A key that is missing or not RSA stops start-up with one line that
/// names `CLOUDFRONT_PRIVATE_KEY`.
#[tokio::test]
async fn keys_that_cannot_sign_stop_start_up_naming_the_variable() {
    let dir = tempfile::tempdir().expect("dir");
    let missing = dir.path().join("absent.pem");
    for (key, says) in [
        (missing.to_str().expect("utf-8").to_owned(), "cannot read"),
        (key_path("ed25519.pem"), "CloudFront signs with RSA"),
        (key_path("README.md"), "is not a PEM private key"),
    ] {
        let cli = Cli::try_parse_from([
            "tooltool",
            "--data-dir",
            dir.path().to_str().expect("utf-8"),
            "--cloudfront-url",
            "d1.cloudfront.net",
            "--cloudfront-key-id",
            "K1",
            "--cloudfront-private-key",
            &key,
        ])
        .expect("arguments");
        let config = cli.config.resolve().expect("resolved");
        let e = tooltool::wire(config, std::sync::Arc::new(tooltool::SystemClock))
            .await
            .err()
            .expect("refused");
        assert!(
            e.starts_with("CLOUDFRONT_PRIVATE_KEY: ") && e.contains(says) && !e.contains('\n'),
            "{key}: {e}"
        );
    }
}
