//! JSON payloads with the exact `Content-Type: application/json` the
//! protocol requires (poem-openapi's `Json` adds `; charset=utf-8`, and
//! `tooltool.py` reads error details only for exactly `application/json`),
//! and request bodies parsed by hand so that every refusal names the member
//! at fault.

use poem::http::header;
use poem::{IntoResponse, Request, RequestBody, Response};
use poem_openapi::ApiResponse;
use poem_openapi::error::ParseRequestPayloadError;
use poem_openapi::impl_apirequest_for_payload;
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry};
use poem_openapi::types::{ToJSON, Type};
use serde_json::Value;

pub const JSON: &str = "application/json";

fn is_json(content_type: &str) -> bool {
    matches!(content_type.parse::<mime::Mime>(), Ok(m)
        if m.type_() == "application" && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json")))
}

/// A JSON response body.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: Type> Payload for ApiJson<T> {
    const CONTENT_TYPE: &'static str = JSON;

    fn check_content_type(content_type: &str) -> bool {
        is_json(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: ToJSON> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        let body = self
            .0
            .to_json()
            .map(|v| v.to_string())
            .unwrap_or_else(|| "null".into());
        Response::builder()
            .header(header::CONTENT_TYPE, JSON)
            .body(body)
    }
}

impl<T: ToJSON> ApiResponse for ApiJson<T> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: JSON,
                    schema: T::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

/// A request body type parsed from JSON with protocol-specific messages.
/// `Doc` is the schema published in the OpenAPI document.
pub trait FromJsonBody: Sized + Send {
    type Doc: Type;

    /// # Errors
    /// A sentence naming the member at fault.
    fn from_json(value: Value) -> Result<Self, String>;
}

/// A JSON request body of type `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: FromJsonBody> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = JSON;

    fn check_content_type(content_type: &str) -> bool {
        is_json(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::Doc::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::Doc::register(registry);
    }
}

impl<T: FromJsonBody> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = <Vec<u8> as poem::FromRequest>::from_request(request, body).await?;
        let fail = |reason: String| ParseRequestPayloadError { reason };
        let value: Value = serde_json::from_slice(&data)
            .map_err(|e| fail(format!("the request body is not valid JSON ({e})")))?;
        Ok(Self(T::from_json(value).map_err(fail)?))
    }
}

impl_apirequest_for_payload!(JsonBody<T>, T: FromJsonBody);
