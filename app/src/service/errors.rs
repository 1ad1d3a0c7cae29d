//! Driven-port failures in the use cases' words: what a metadata, storage
//! or authentication failure means for the caller. The cause stays as the
//! error's source; which HTTP status a kind becomes is not decided here.

use tooltool_domain::BatchError;
use tooltool_ports::{
    AuthError, BlobError, Chain, MetadataError, URL_NOT_FOUND_MESSAGE, UseCaseError,
};

/// A broken batch rule, whether the service found it before the store or
/// the store against what it holds: a declared size above the limit is
/// "too large", every other rule "invalid".
pub fn batch_error(e: BatchError) -> UseCaseError {
    match e {
        BatchError::TooLarge { .. } => UseCaseError::too_large(e.to_string()),
        rule => UseCaseError::invalid(rule.to_string()),
    }
}

pub fn store_error(e: MetadataError) -> UseCaseError {
    match e {
        MetadataError::Rejected(rule) => batch_error(rule),
        e @ MetadataError::Unavailable(_) => UseCaseError::unavailable(e),
        e @ MetadataError::Internal(_) => UseCaseError::internal(e),
        e @ MetadataError::OutOfSpace(_) => UseCaseError::out_of_space(e),
    }
}

pub fn blob_error(e: BlobError) -> UseCaseError {
    match &e {
        BlobError::NotFound => UseCaseError::not_found(URL_NOT_FOUND_MESSAGE),
        BlobError::Forbidden(why) => UseCaseError::denied(why.clone()),
        BlobError::RangeNotSatisfiable { .. } => UseCaseError::out_of_range(e.to_string()),
        // The client's transfer: it is told what went wrong with it.
        BlobError::TooLarge { .. } | BlobError::Interrupted(_) => {
            UseCaseError::invalid(Chain(&e).to_string())
        }
        BlobError::Changed | BlobError::Unavailable(_) => UseCaseError::unavailable(e),
        BlobError::OutOfSpace(_) => UseCaseError::out_of_space(e),
        BlobError::OtherDomain(_) => UseCaseError::internal(e),
    }
}

/// A failure reading bytes this server keeps (verification, replication):
/// an interrupted read is the store's failure, retryable, never the
/// client's mistake (unlike an interrupted upload, see [`blob_error`]).
pub fn storage_error(e: BlobError) -> UseCaseError {
    match e {
        BlobError::Interrupted(_) => UseCaseError::unavailable(e),
        other => blob_error(other),
    }
}

pub fn auth_error(e: AuthError) -> UseCaseError {
    match e {
        AuthError::Invalid(why) => UseCaseError::not_authenticated(why),
        AuthError::Unavailable(_) => UseCaseError::unavailable_because(
            "the authentication service is unavailable; retry in a moment",
            e,
        ),
    }
}
