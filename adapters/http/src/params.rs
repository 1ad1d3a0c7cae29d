//! Parameter types whose document says what they accept: a digest
//! (`pattern`), the required search term `q`, page sizes and batch ids
//! (integers). They take whatever
//! arrives and the operation checks it, because poem-openapi would wrap a
//! refusal in words of its own ("failed to parse path `param0`: …") where
//! the protocol prescribes exact sentences (`Invalid sha512 digest`).

use poem_openapi::registry::MetaSchema;
use poem_openapi::types::{ParseFromParameter, ParseResult};
use tooltool_domain::{Digest, MAX_PAGE_LIMIT};
use tooltool_ports::UseCaseError;

use crate::problem::ErrorResponse;

/// What every digest parameter matches (lower-case hex, as PROTOCOL.md says).
pub const DIGEST_PATTERN: &str = "^[0-9a-f]{128}$";

/// A SHA-512 digest in a path or query, as sent.
#[derive(Debug, Clone)]
pub struct DigestParam(String);

impl DigestParam {
    /// The digest, or 400 `Invalid sha512 digest`.
    pub fn parse(&self) -> Result<Digest, ErrorResponse> {
        Digest::parse(&self.0).map_err(|e| UseCaseError::invalid(e.to_string()).into())
    }
}

/// The search term of `GET /upload` and `GET /file`: required, may be
/// empty; `None` when the request has none.
#[derive(Debug, Clone)]
pub struct SearchTerm(Option<String>);

impl SearchTerm {
    /// The term, or 400 saying it is required.
    pub fn required(self) -> Result<String, ErrorResponse> {
        self.0.ok_or_else(|| {
            UseCaseError::invalid("the query parameter 'q' is required (use q= to list everything)")
                .into()
        })
    }
}

/// `Type` for a newtype documented by `$schema` (also the wire times' type,
/// `timestamp.rs`).
macro_rules! documented_type {
    ($ty:ident, $name:literal, $schema:expr) => {
        impl ::poem_openapi::types::Type for $ty {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> ::std::borrow::Cow<'static, str> {
                $name.into()
            }

            fn schema_ref() -> ::poem_openapi::registry::MetaSchemaRef {
                ::poem_openapi::registry::MetaSchemaRef::Inline(Box::new($schema))
            }

            fn as_raw_value(&self) -> Option<&Self::RawValueType> {
                Some(self)
            }

            fn raw_element_iter<'a>(
                &'a self,
            ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
                Box::new(self.as_raw_value().into_iter())
            }
        }
    };
}

pub(crate) use documented_type;

documented_type!(
    DigestParam,
    "sha512_digest",
    MetaSchema {
        pattern: Some(DIGEST_PATTERN.to_owned()),
        ..MetaSchema::new("string")
    }
);
/// What a search term may hold (`tooltool_domain::check_search_term`): no
/// control character, at most 1024 bytes of UTF-8 (the document's
/// maxLength counts characters, so it bounds ASCII terms exactly).
pub const SEARCH_TERM_PATTERN: &str = r"^[^\u0000-\u001f\u007f-\u009f]*$";

documented_type!(
    SearchTerm,
    "search_term",
    MetaSchema {
        pattern: Some(SEARCH_TERM_PATTERN.to_owned()),
        max_length: Some(tooltool_domain::MAX_SEARCH_TERM_BYTES),
        ..MetaSchema::new("string")
    }
);

/// A page size as sent (`limit`); the document declares 1 to
/// [`MAX_PAGE_LIMIT`] (the use case checks it).
#[derive(Debug, Clone)]
pub struct PageLimit(pub String);

documented_type!(
    PageLimit,
    "page_limit",
    MetaSchema {
        format: Some("int32"),
        minimum: Some(1.0),
        maximum: Some(MAX_PAGE_LIMIT as f64),
        ..MetaSchema::new("integer")
    }
);

/// A batch id as sent (a path's `id`, a cursor's `before`); the document
/// declares a 64-bit integer.
#[derive(Debug, Clone)]
pub struct BatchId(pub String);

documented_type!(
    BatchId,
    "batch_id",
    MetaSchema {
        format: Some("int64"),
        ..MetaSchema::new("integer")
    }
);

impl ParseFromParameter for DigestParam {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(Self(value.to_owned()))
    }
}

impl ParseFromParameter for PageLimit {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(Self(value.to_owned()))
    }
}

impl ParseFromParameter for BatchId {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(Self(value.to_owned()))
    }
}

impl ParseFromParameter for SearchTerm {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(Self(Some(value.to_owned())))
    }

    fn parse_from_parameters<I: IntoIterator<Item = A>, A: AsRef<str>>(
        iter: I,
    ) -> ParseResult<Self> {
        Ok(Self(
            iter.into_iter()
                .next()
                .map(|value| value.as_ref().to_owned()),
        ))
    }
}
