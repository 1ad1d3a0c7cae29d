//! The single error shape of PROTOCOL.md §1: RFC 7807 members plus the
//! `error.name`/`error.description` pair that `tooltool.py` reads.

use poem::http::StatusCode;
use poem_openapi::{ApiResponse, Object};
use tooltool_ports::{ApiError, ErrorKind};

use crate::payload::ApiJson;

/// The `error` member read by the Mozilla client.
#[derive(Debug, Clone, Object)]
pub struct ErrorDetail {
    /// Same as `title`.
    pub name: String,
    /// Same as `detail`.
    pub description: String,
}

/// Every error response, 4xx and 5xx.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct Problem {
    #[oai(rename = "type")]
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
        let title = format!(
            "{} {}: {detail}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error")
        );
        Self {
            kind: "about:blank".into(),
            title: title.clone(),
            status: status.as_u16(),
            detail: detail.clone(),
            instance: "about:blank".into(),
            error: ErrorDetail {
                name: title,
                description: detail,
            },
        }
    }
}

/// Error responses of the API operations.
#[derive(Debug, ApiResponse)]
pub enum ErrorResponse {
    /// The request is malformed; `detail` says what to fix.
    #[oai(status = 400)]
    BadRequest(ApiJson<Box<Problem>>),
    /// A credential was sent but is not valid (or none was sent where one is required).
    #[oai(status = 401)]
    Unauthorized(ApiJson<Box<Problem>>),
    /// The principal lacks the scope this needs.
    #[oai(status = 403)]
    Forbidden(ApiJson<Box<Problem>>),
    #[oai(status = 404)]
    NotFound(ApiJson<Box<Problem>>),
    #[oai(status = 409)]
    Conflict(ApiJson<Box<Problem>>),
    /// A declared size or the request body is larger than allowed.
    #[oai(status = 413)]
    PayloadTooLarge(ApiJson<Box<Problem>>),
    #[oai(status = 416)]
    RangeNotSatisfiable(ApiJson<Box<Problem>>),
    #[oai(status = 500)]
    Internal(ApiJson<Box<Problem>>),
    /// A dependency (database, storage, authentication service) is unreachable; retry later.
    #[oai(status = 503)]
    Unavailable(ApiJson<Box<Problem>>),
}

impl ErrorResponse {
    pub fn status(kind: ErrorKind) -> StatusCode {
        match kind {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::new(ErrorKind::BadRequest, detail).into()
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::new(ErrorKind::NotFound, detail).into()
    }
}

/// The detail shown for server-side failures: the cause goes to the log only.
fn public_detail(error: &ApiError) -> String {
    match error.kind {
        ErrorKind::Internal => {
            "The server failed to handle this request; it has been logged.".into()
        }
        ErrorKind::Unavailable => {
            "A service this server depends on is unavailable; retry in a moment.".into()
        }
        _ => error.message.clone(),
    }
}

/// The one place where use-case errors become HTTP statuses.
impl From<ApiError> for ErrorResponse {
    fn from(error: ApiError) -> Self {
        if matches!(error.kind, ErrorKind::Internal | ErrorKind::Unavailable) {
            // A warning: the request line reports the 5xx itself (an error,
            // hence a Sentry event) and carries this cause as a breadcrumb.
            tracing::warn!(kind = ?error.kind, cause = %error.message, "request failed");
        }
        let problem = ApiJson(Box::new(Problem::new(
            Self::status(error.kind),
            public_detail(&error),
        )));
        match error.kind {
            ErrorKind::BadRequest => Self::BadRequest(problem),
            ErrorKind::Unauthorized => Self::Unauthorized(problem),
            ErrorKind::Forbidden => Self::Forbidden(problem),
            ErrorKind::NotFound => Self::NotFound(problem),
            ErrorKind::Conflict => Self::Conflict(problem),
            ErrorKind::PayloadTooLarge => Self::PayloadTooLarge(problem),
            ErrorKind::RangeNotSatisfiable => Self::RangeNotSatisfiable(problem),
            ErrorKind::Internal => Self::Internal(problem),
            ErrorKind::Unavailable => Self::Unavailable(problem),
        }
    }
}

/// A problem response for errors raised outside the operations (routing,
/// body parsing, middleware).
pub fn problem_response(status: StatusCode, detail: impl Into<String>) -> poem::Response {
    use poem::IntoResponse;
    let mut response = ApiJson(Problem::new(status, detail)).into_response();
    response.set_status(status);
    response
}
