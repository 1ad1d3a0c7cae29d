//! `POST /fetch`: the body parsed before the driving port is called, each
//! digest's answer as the port decided it, faults as the error shape.

mod support;

use serde_json::json;
use support::{client, digest, parts, problem};
use tooltool_domain::{RegionName, Visibility};
use tooltool_ports::{MockToolTool, Resolution, Resolutions, UseCaseError};

#[tokio::test]
async fn each_digest_is_answered_in_order_with_what_the_port_decided() {
    let (found, absent, pending, internal) = (
        digest(b"found"),
        digest(b"absent"),
        digest(b"pending"),
        digest(b"internal"),
    );
    let asked = vec![
        found.clone(),
        absent.clone(),
        pending.clone(),
        internal.clone(),
    ];
    let mut service = MockToolTool::new();
    let expected = asked.clone();
    service
        .expect_resolve()
        .withf(move |p, digests, region| {
            p.is_anonymous()
                && *digests == expected
                && *region == Some(RegionName::parse("west").expect("valid"))
        })
        .times(1)
        .returning(|_, digests, _| {
            let mut answers = digests.into_iter();
            let mut next = |file, url| Resolution {
                digest: answers.next().expect("four"),
                file,
                url,
            };
            Ok(Resolutions {
                expires_in_secs: 60,
                files: vec![
                    next(
                        Some((5, Visibility::Public)),
                        Ok("https://store/f?sig=1".into()),
                    ),
                    next(None, Err(UseCaseError::not_found("No verified copy."))),
                    next(
                        Some((7, Visibility::Public)),
                        Err(UseCaseError::not_yet("not verified yet")),
                    ),
                    next(
                        Some((8, Visibility::Internal)),
                        Err(UseCaseError::denied("You don't have the permission")),
                    ),
                ],
            })
        });
    let cli = client(service);
    let body = json!({"digests": asked.iter().map(ToString::to_string).collect::<Vec<_>>()});
    let resp = cli
        .post("/fetch?region=west")
        .content_type("application/json")
        .body(body.to_string())
        .send()
        .await;
    let (status, headers, body) = parts(resp).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        body.expect("JSON"),
        json!({"result": {"expires_in": 60, "files": [
            {"digest": found.to_string(), "status": "found", "size": 5,
             "visibility": "public", "url": "https://store/f?sig=1"},
            {"digest": absent.to_string(), "status": "not_found", "detail": "No verified copy."},
            {"digest": pending.to_string(), "status": "not_verified", "size": 7,
             "visibility": "public", "detail": "not verified yet"},
            {"digest": internal.to_string(), "status": "forbidden", "size": 8,
             "visibility": "internal", "detail": "You don't have the permission"},
        ]}})
    );
}

#[tokio::test]
async fn bad_bodies_are_400_naming_the_member_before_any_use_case() {
    let mut service = MockToolTool::new();
    service.expect_resolve().never();
    let cli = client(service);
    let good = digest(b"x").to_string();
    for (body, expected) in [
        (
            json!([good]),
            "the request body must be a JSON object with 'digests'",
        ),
        (
            json!({"files": [good]}),
            "the request body must be a JSON object with 'digests'",
        ),
        (
            json!({"digests": good}),
            "'digests' must be an array of sha512 digests",
        ),
        (
            json!({"digests": [good, 7]}),
            "'digests'[1] must be a string",
        ),
        (
            json!({"digests": [good, "ABC"]}),
            "'digests'[1]: Invalid sha512 digest",
        ),
    ] {
        let resp = cli
            .post("/fetch")
            .content_type("application/json")
            .body(body.to_string())
            .send()
            .await;
        assert_eq!(problem(resp, 400).await, expected, "{body}");
    }
    let resp = cli
        .post("/fetch")
        .content_type("text/plain")
        .body("{}")
        .send()
        .await;
    problem(resp, 415).await;
}

/// A fault fails the request as a whole, so a client retries it instead
/// of reading a refusal; an empty list is an empty answer.
#[tokio::test]
async fn faults_fail_the_whole_request() {
    let mut service = MockToolTool::new();
    service
        .expect_resolve()
        .withf(|_, digests, _| digests.is_empty())
        .returning(|_, _, _| {
            Ok(Resolutions {
                expires_in_secs: 60,
                files: vec![],
            })
        });
    service
        .expect_resolve()
        .returning(|_, _, _| Err(UseCaseError::unavailable("database unreachable")));
    let cli = client(service);
    let resp = cli
        .post("/fetch")
        .content_type("application/json")
        .body(r#"{"digests": []}"#)
        .send()
        .await;
    let (status, _, body) = parts(resp).await;
    assert_eq!(
        (status, body),
        (
            200,
            Some(json!({"result": {"expires_in": 60, "files": []}}))
        )
    );
    let resp = cli
        .post("/fetch")
        .content_type("application/json")
        .body(json!({"digests": [digest(b"x").to_string()]}).to_string())
        .send()
        .await;
    assert_eq!(parts(resp).await.0, 503);
}
