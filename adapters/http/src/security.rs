//! The credentials operations accept, as the OpenAPI document declares
//! them (`components.securitySchemes`), so that Swagger UI's Authorize
//! button and generated clients know how to send them.
//!
//! Declaration only: the authentication layer (`auth.rs`) has already
//! verified the request's credential, refused a bad one with 401, and put
//! the caller's `Principal` in the request before any operation runs. An
//! operation takes a [`Credentials`] argument to be documented with
//! `security: [{bearer: []}, {hawk: []}, {}]` (the empty requirement:
//! anonymous calls are allowed too), and never reads it.

use poem_openapi::SecurityScheme;
use poem_openapi::auth::{ApiKey, Bearer};

/// A JWT signed with the server's key (`tooltool token` mints one), sent as
/// `Authorization: Bearer <token>`. Its `sub` is the caller, its `scopes`
/// what the caller may do.
#[derive(SecurityScheme)]
#[oai(rename = "bearer", ty = "bearer", bearer_format = "JWT")]
pub(crate) struct BearerToken(#[allow(dead_code)] Bearer);

/// Taskcluster credentials: the whole `Authorization` header value of a
/// Hawk-signed request, `Hawk id="<clientId>", ts="…", nonce="…",
/// [hash="…", ]mac="…"`, computed per request from the access token over
/// the method, path with query, host and port (a Taskcluster client or
/// `tooltool.py --authentication-file` signs it).
#[derive(SecurityScheme)]
#[oai(
    rename = "hawk",
    ty = "api_key",
    key_name = "Authorization",
    key_in = "header"
)]
pub(crate) struct HawkHeader(#[allow(dead_code)] ApiKey);

/// Bearer, Hawk, or no credential at all.
#[derive(SecurityScheme)]
pub(crate) enum Credentials {
    Bearer(#[allow(dead_code)] BearerToken),
    Hawk(#[allow(dead_code)] HawkHeader),
    #[oai(fallback)]
    Anonymous,
}
