//! The single error shape of PROTOCOL.md §1 (RFC 7807 members plus the
//! `error.name`/`error.description` pair that `tooltool.py` reads), and the
//! one place where failures become HTTP statuses: [`TABLE`] for use-case
//! errors, whatever raised them (an operation, the authentication layer, a
//! blob route), and [`to_problem`] for what poem itself refuses (routing,
//! payload parsing) or a panic.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiResponse, Object};
use tooltool_ports::{ErrorKind, INTERNAL_MESSAGE, URL_NOT_FOUND_MESSAGE, UseCaseError};

use crate::payload::JSON;

/// Kind of use-case failure → status, with what the OpenAPI document says
/// of that status. Sorted by status; kinds sharing a status document it
/// once, with the first one's description.
const TABLE: [(ErrorKind, StatusCode, &str); 11] = [
    (
        ErrorKind::Invalid,
        StatusCode::BAD_REQUEST,
        "The request is malformed; `detail` says what to fix.",
    ),
    (
        ErrorKind::NotAuthenticated,
        StatusCode::UNAUTHORIZED,
        "A credential was sent but is not valid (or none was sent where one is required).",
    ),
    (
        ErrorKind::Denied,
        StatusCode::FORBIDDEN,
        "The principal lacks the scope this needs.",
    ),
    (ErrorKind::NotFound, StatusCode::NOT_FOUND, ""),
    (ErrorKind::NotYet, StatusCode::CONFLICT, ""),
    (ErrorKind::Closed, StatusCode::CONFLICT, ""),
    (
        ErrorKind::TooLarge,
        StatusCode::PAYLOAD_TOO_LARGE,
        "A declared size or the request body is larger than allowed.",
    ),
    (ErrorKind::OutOfRange, StatusCode::RANGE_NOT_SATISFIABLE, ""),
    (ErrorKind::Internal, StatusCode::INTERNAL_SERVER_ERROR, ""),
    (
        ErrorKind::Unavailable,
        StatusCode::SERVICE_UNAVAILABLE,
        "A dependency (database, storage, authentication service) is unreachable; retry later.",
    ),
    (
        ErrorKind::OutOfSpace,
        StatusCode::INSUFFICIENT_STORAGE,
        "The storage or the database is full; nothing was kept.",
    ),
];

/// The status a kind of failure is answered with.
pub fn status(kind: ErrorKind) -> StatusCode {
    TABLE
        .iter()
        .find(|(k, _, _)| *k == kind)
        .map_or(StatusCode::INTERNAL_SERVER_ERROR, |(_, status, _)| *status)
}

/// The `error` member read by the Mozilla client, which logs
/// `<name>: <description>` (so `403 Forbidden: <sentence>`).
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct ErrorDetail {
    /// The status line, `"<code> <Reason>"` (e.g. `"403 Forbidden"`).
    pub name: String,
    /// Same as `detail`.
    pub description: String,
}

// Also `Serialize`: error answers are written straight from the struct
// (`Problem::to_body`) rather than through poem-openapi's
// `serde_json::Value` tree, which was 7.6 % of the 400 path's profile; a
// test keeps both serialisations equal as JSON (the members now come in
// the document's order, `type` first as RFC 7807 lists them, where the
// tree sorted them). Not a doc comment: those are the OpenAPI
// document's descriptions.
/// Every error response, 4xx and 5xx.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(example)]
pub struct Problem {
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    /// `"<code> <Reason>: <detail>"`.
    pub title: String,
    pub status: u16,
    /// A sentence a person can act on.
    pub detail: String,
    pub instance: String,
    pub error: ErrorDetail,
}

impl poem_openapi::types::Example for Problem {
    fn example() -> Self {
        Problem::new(StatusCode::BAD_REQUEST, "Invalid sha512 digest")
    }
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        // The originals repeated the sentence in `error.name`, so the
        // client printed every reason twice (PROTOCOL.md §1 Errors).
        let status_line = format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error")
        );
        Self {
            kind: "about:blank".into(),
            title: format!("{status_line}: {detail}"),
            status: status.as_u16(),
            detail: detail.clone(),
            instance: "about:blank".into(),
            error: ErrorDetail {
                name: status_line,
                description: detail,
            },
        }
    }

    /// The JSON body (the value `ApiJson` would write), in one pass.
    pub fn to_body(&self) -> String {
        // Strings and integers only: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| "null".into())
    }

    /// The problem of a kind of failure, with its status from [`TABLE`].
    pub fn of(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self::new(status(kind), detail)
    }
}

/// A failed use case as an HTTP response: its status from [`TABLE`], its
/// message as the detail (server faults carry a generic one; their cause
/// is logged here, with its chain, and never sent).
#[derive(Debug)]
pub struct ErrorResponse(pub UseCaseError);

impl From<UseCaseError> for ErrorResponse {
    fn from(error: UseCaseError) -> Self {
        Self(error)
    }
}

impl IntoResponse for ErrorResponse {
    fn into_response(self) -> Response {
        let error = self.0;
        if error.kind().is_server_fault() {
            // A warning: the request line reports the 5xx itself (an error,
            // hence a Sentry event) and carries this cause as a breadcrumb.
            tracing::warn!(
                kind = ?error.kind(),
                error = &error as &(dyn std::error::Error + 'static),
                "request failed"
            );
        }
        problem_response(status(error.kind()), error.message())
    }
}

impl From<ErrorResponse> for poem::Error {
    fn from(e: ErrorResponse) -> Self {
        poem::Error::from_response(e.into_response())
    }
}

/// Every status of [`TABLE`] once, in the shape of the error.
impl ApiResponse for ErrorResponse {
    fn meta() -> MetaResponses {
        let mut responses: Vec<MetaResponse> = Vec::new();
        for (_, status, description) in TABLE {
            if responses.iter().any(|r| r.status == Some(status.as_u16())) {
                continue;
            }
            responses.push(MetaResponse {
                description,
                status: Some(status.as_u16()),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: JSON,
                    schema: Box::<Problem>::schema_ref(),
                }],
                headers: vec![],
            });
        }
        MetaResponses { responses }
    }

    fn register(registry: &mut Registry) {
        Box::<Problem>::register(registry);
    }
}

/// The errors of an operation with a JSON request body: those of
/// [`ErrorResponse`], and 415 for a body that is not JSON (poem-openapi
/// refuses it before the operation runs; `to_problem` shapes it).
#[derive(Debug)]
pub struct BodyErrorResponse(pub ErrorResponse);

impl<E: Into<ErrorResponse>> From<E> for BodyErrorResponse {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for BodyErrorResponse {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl From<BodyErrorResponse> for poem::Error {
    fn from(e: BodyErrorResponse) -> Self {
        e.0.into()
    }
}

impl ApiResponse for BodyErrorResponse {
    fn meta() -> MetaResponses {
        let mut meta = ErrorResponse::meta();
        let at = meta
            .responses
            .iter()
            .position(|r| r.status > Some(415))
            .unwrap_or(meta.responses.len());
        meta.responses.insert(
            at,
            MetaResponse {
                description: "The request body is not `application/json`.",
                status: Some(StatusCode::UNSUPPORTED_MEDIA_TYPE.as_u16()),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: JSON,
                    schema: Box::<Problem>::schema_ref(),
                }],
                headers: vec![],
            },
        );
        meta
    }

    fn register(registry: &mut Registry) {
        ErrorResponse::register(registry);
    }
}

/// A problem response for errors raised outside the operations (routing,
/// body parsing, middleware).
pub fn problem_response(status: StatusCode, detail: impl Into<String>) -> Response {
    Response::builder()
        .status(status)
        .header(poem::http::header::CONTENT_TYPE, JSON)
        .body(Problem::new(status, detail).to_body())
}

/// Maps errors raised outside the operations (unknown route, wrong method,
/// unparsable body, wrong content type) to the protocol's error shape;
/// their status is poem's.
pub async fn to_problem(err: poem::Error) -> Response {
    // What the request log needs, whichever way the response is made.
    let op = err.data::<poem_openapi::OperationId>().copied();
    let principal = err.data::<crate::observe::PrincipalId>().cloned();
    let mut resp = if err.is_from_response() {
        // Already in the error shape (a use-case error of a handler).
        err.into_response()
    } else {
        let status = err.status();
        let detail =
            if let Some(e) = err.downcast_ref::<poem_openapi::error::ParseRequestPayloadError>() {
                e.reason.clone()
            } else if status == StatusCode::NOT_FOUND {
                URL_NOT_FOUND_MESSAGE.to_owned()
            } else if status == StatusCode::METHOD_NOT_ALLOWED {
                "The method is not allowed for the requested URL.".to_owned()
            } else if status.is_server_error() {
                tracing::warn!(error = %err, "unhandled server error");
                INTERNAL_MESSAGE.to_owned()
            } else {
                err.to_string()
            };
        problem_response(status, detail)
    };
    if let Some(op) = op {
        resp.set_data(op);
    }
    if let Some(principal) = principal {
        resp.set_data(principal);
    }
    resp
}

/// What a panic answers (the panic itself is reported by the process's
/// panic hook, hence Sentry).
pub fn panicked() -> Response {
    ErrorResponse(UseCaseError::internal("a request handler panicked")).into_response()
}

#[cfg(test)]
mod tests {
    use poem_openapi::types::ToJSON as _;

    use super::*;

    #[test]
    fn the_direct_body_is_the_documented_one() {
        for (_, status, _) in TABLE {
            let problem = Problem::new(status, "a \"quoted\" détail\n");
            let direct: serde_json::Value =
                serde_json::from_str(&problem.to_body()).expect("the body is JSON");
            assert_eq!(Some(direct), problem.to_json(), "{status}");
        }
        // The members in the document's order (the README shows them).
        assert_eq!(
            Problem::new(StatusCode::BAD_REQUEST, "Invalid sha512 digest").to_body(),
            r#"{"type":"about:blank","title":"400 Bad Request: Invalid sha512 digest","status":400,"detail":"Invalid sha512 digest","instance":"about:blank","error":{"name":"400 Bad Request","description":"Invalid sha512 digest"}}"#
        );
    }

    #[tokio::test]
    async fn problem_responses_carry_status_type_and_shape() {
        let resp = problem_response(StatusCode::NOT_FOUND, "gone");
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(resp.content_type(), Some(JSON));
        let body: serde_json::Value =
            serde_json::from_str(&resp.into_body().into_string().await.expect("a body"))
                .expect("the body is JSON");
        assert_eq!(body["title"], "404 Not Found: gone");
        assert_eq!(body["error"]["name"], "404 Not Found");
        assert_eq!(body["type"], "about:blank");
    }
}
