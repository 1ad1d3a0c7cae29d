//! `PUT`/`GET /blob/{region}/{key}`: the targets of the URLs stores sign
//! for this server (every transfer of a local directory, S3 uploads above
//! its single-PUT limit). Not part of the
//! OpenAPI document: clients only ever follow URLs the server handed out.

use std::sync::Arc;

use futures_util::TryStreamExt;
use poem::http::{StatusCode, header};
use poem::web::Path;
use poem::{Body, Request, Response, handler};
use tooltool_domain::RegionName;
use tooltool_ports::{BlobError, ByteRange, ToolTool, URL_NOT_FOUND_MESSAGE, UseCaseError};

use crate::problem::ErrorResponse;

/// Failures leave like the operations' (status and logging decided once).
type Result<T> = std::result::Result<T, ErrorResponse>;

/// A region name from the path; one that cannot be a region names nothing.
fn region(text: &str) -> Result<RegionName> {
    RegionName::parse(text).map_err(|_| UseCaseError::not_found(URL_NOT_FOUND_MESSAGE).into())
}

#[handler]
pub async fn put_blob(
    req: &Request,
    Path((region, key)): Path<(String, String)>,
    body: Body,
    service: poem::web::Data<&Arc<dyn ToolTool>>,
) -> Result<Response> {
    let region = self::region(&region)?;
    let query = req.uri().query().unwrap_or_default();
    let stream = body.into_bytes_stream().map_err(BlobError::interrupted);
    service
        .receive_blob(&region, &key, query, Box::pin(stream))
        .await?;
    // The Mozilla client treats anything but exactly 200 as failure.
    Ok(Response::builder().status(StatusCode::OK).finish())
}

/// Parses a single `bytes=` range; anything else serves the whole object,
/// which RFC 9110 allows a server to do for ranges it does not support.
fn parse_range(value: Option<&str>) -> ByteRange {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return ByteRange::Full;
    };
    if spec.contains(',') {
        return ByteRange::Full;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return ByteRange::Full;
    };
    match (
        first.trim().parse::<u64>().ok(),
        last.trim().parse::<u64>().ok(),
    ) {
        (Some(f), Some(l)) => ByteRange::Inclusive(f, l),
        (Some(f), None) if last.trim().is_empty() => ByteRange::From(f),
        (None, Some(n)) if first.trim().is_empty() => ByteRange::Suffix(n),
        _ => ByteRange::Full,
    }
}

#[handler]
pub async fn get_blob(
    req: &Request,
    Path((region, key)): Path<(String, String)>,
    service: poem::web::Data<&Arc<dyn ToolTool>>,
) -> Result<Response> {
    let region = self::region(&region)?;
    let query = req.uri().query().unwrap_or_default();
    let range = parse_range(req.header(header::RANGE));
    let opened = service.serve_blob(&region, &key, query, range).await?;
    // Content addressed: the digest is the strongest possible ETag.
    let etag = format!("\"{}\"", opened.digest);
    let (status, len) = match opened.range {
        Some((start, end)) => (StatusCode::PARTIAL_CONTENT, end - start + 1),
        None => (StatusCode::OK, opened.size),
    };
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, len)
        .header(header::ETAG, etag)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "private, immutable");
    if let Some((start, end)) = opened.range {
        builder = builder.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{end}/{}", opened.size),
        );
    }
    Ok(builder.body(Body::from_bytes_stream(
        opened.body.map_err(std::io::Error::other),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_header_table() {
        for (header, expected) in [
            (None, ByteRange::Full),
            (Some("bytes=0-9"), ByteRange::Inclusive(0, 9)),
            (Some("bytes=5-"), ByteRange::From(5)),
            (Some("bytes=-5"), ByteRange::Suffix(5)),
            (Some("bytes=0-1,3-4"), ByteRange::Full),
            (Some("items=0-1"), ByteRange::Full),
            (Some("bytes=x-y"), ByteRange::Full),
            (Some("bytes=-"), ByteRange::Full),
        ] {
            assert_eq!(parse_range(header), expected, "{header:?}");
        }
    }
}
