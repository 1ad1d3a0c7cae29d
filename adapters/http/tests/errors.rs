//! Use-case errors, whatever raises them, leave with the status of
//! problem.rs's table and in the one error shape; server faults never
//! show their cause.

mod support;

use support::{LIMIT, client, digest, problem};
use tooltool_ports::{
    AuthError, ErrorKind, INTERNAL_MESSAGE, MockToolTool, OUT_OF_SPACE_MESSAGE,
    UNAVAILABLE_MESSAGE, UseCaseError,
};

/// A refusal, or a server fault whose cause must stay in the logs.
fn error_of(kind: ErrorKind) -> UseCaseError {
    let refusal = format!("refused as {kind:?}");
    match kind {
        ErrorKind::Invalid => UseCaseError::invalid(refusal),
        ErrorKind::NotAuthenticated => UseCaseError::not_authenticated(refusal),
        ErrorKind::Denied => UseCaseError::denied(refusal),
        ErrorKind::NotFound => UseCaseError::not_found(refusal),
        ErrorKind::NotYet => UseCaseError::not_yet(refusal),
        ErrorKind::Closed => UseCaseError::closed(refusal),
        ErrorKind::TooLarge => UseCaseError::too_large(refusal),
        ErrorKind::OutOfRange => UseCaseError::out_of_range(refusal),
        ErrorKind::Unavailable => UseCaseError::unavailable("secret cause at db.internal:5432"),
        ErrorKind::Internal => UseCaseError::internal("secret cause at db.internal:5432"),
        ErrorKind::OutOfSpace => UseCaseError::out_of_space("secret cause at /srv/objects"),
    }
}

#[tokio::test]
async fn every_kind_has_its_status_and_the_error_shape() {
    let table = [
        (ErrorKind::Invalid, 400),
        (ErrorKind::NotAuthenticated, 401),
        (ErrorKind::Denied, 403),
        (ErrorKind::NotFound, 404),
        (ErrorKind::NotYet, 409),
        (ErrorKind::Closed, 409),
        (ErrorKind::TooLarge, 413),
        (ErrorKind::OutOfRange, 416),
        (ErrorKind::Internal, 500),
        (ErrorKind::Unavailable, 503),
        (ErrorKind::OutOfSpace, 507),
    ];
    for (kind, status) in table {
        let mut service = MockToolTool::new();
        service
            .expect_get_file()
            .times(1)
            .returning(move |_| Err(error_of(kind)));
        let cli = client(service);
        let resp = cli
            .get(format!("/file/sha512/{}", digest(b"x")))
            .send()
            .await;
        let detail = problem(resp, status).await;
        match kind {
            ErrorKind::Internal => assert_eq!(detail, INTERNAL_MESSAGE),
            ErrorKind::Unavailable => assert_eq!(detail, UNAVAILABLE_MESSAGE),
            ErrorKind::OutOfSpace => assert_eq!(detail, OUT_OF_SPACE_MESSAGE),
            _ => assert_eq!(detail, format!("refused as {kind:?}")),
        }
        assert!(!detail.contains("secret cause"), "{kind:?}: {detail}");
    }
}

/// The authentication layer's refusals go through the same table.
#[tokio::test]
async fn authentication_refusals_are_401_and_outages_503() {
    let mut service = MockToolTool::new();
    service
        .expect_authenticate()
        .returning(|request| match request.credentials.as_str() {
            "Bearer bad" => Err(UseCaseError::not_authenticated("the token has expired")),
            _ => Err(UseCaseError::unavailable_because(
                "the authentication service is unavailable; retry in a moment",
                AuthError::unavailable("connect to tc.internal refused"),
            )),
        });
    service.expect_download().never();
    let cli = client(service);
    let d = digest(b"x");
    for (credentials, status, expected) in [
        ("Bearer bad", 401, "the token has expired"),
        (
            "Hawk id=\"x\"",
            503,
            "the authentication service is unavailable; retry in a moment",
        ),
    ] {
        let resp = cli
            .get(format!("/sha512/{d}"))
            .header("Authorization", credentials)
            .send()
            .await;
        assert_eq!(problem(resp, status).await, expected);
    }
}

/// Bodies over the limit are refused before anything is asked of the
/// service, declared or streamed.
#[tokio::test]
async fn bodies_over_the_limit_are_413_before_any_use_case() {
    let mut service = MockToolTool::new();
    service.expect_create_batch().never();
    service.expect_authenticate().never();
    let cli = client(service);
    let huge = format!(r#"{{"message":"{}","files":{{}}}}"#, "x".repeat(LIMIT));
    let declared = cli
        .post("/upload")
        .header("Authorization", "Bearer t")
        .content_type("application/json")
        .body(huge.clone())
        .send()
        .await;
    assert!(problem(declared, 413).await.contains("4096 bytes"));
    let chunks: Vec<Result<String, std::io::Error>> = vec![
        Ok(huge[..LIMIT / 2].to_owned()),
        Ok(huge[LIMIT / 2..].to_owned()),
    ];
    let streamed = cli
        .post("/upload")
        .content_type("application/json")
        .body(poem::Body::from_bytes_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await;
    problem(streamed, 413).await;
}

/// What poem refuses itself (routing, content type) has the shape too.
#[tokio::test]
async fn routing_refusals_have_the_error_shape() {
    let cli = client(MockToolTool::new());
    assert!(
        problem(cli.get("/nope").send().await, 404)
            .await
            .contains("not found")
    );
    let refused = cli.delete("/upload").send().await;
    assert_eq!(
        refused
            .0
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok()),
        Some("GET, POST, HEAD"),
        "a 405 says what the resource takes"
    );
    assert!(problem(refused, 405).await.contains("not allowed"));
    let digest = "a".repeat(128);
    for (method, path, allow) in [
        (
            poem::http::Method::PUT,
            format!("/sha512/{digest}"),
            "GET, HEAD",
        ),
        (
            poem::http::Method::POST,
            format!("/file/sha512/{digest}"),
            "GET, PATCH, HEAD",
        ),
        (
            poem::http::Method::DELETE,
            "/blob/local/sha512/x".to_owned(),
            "GET, PUT, HEAD",
        ),
    ] {
        let resp = cli.request(method.clone(), path.clone()).send().await;
        assert_eq!(resp.0.status(), 405, "{method} {path}");
        assert_eq!(
            resp.0.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
    }
    let wrong_type = cli
        .post("/upload")
        .content_type("text/plain")
        .body("{}")
        .send()
        .await;
    problem(wrong_type, 415).await;
}
