//! Instants on the wire: ISO-8601 UTC with microseconds and `Z`
//! (`2026-11-25T14:33:16.843608Z`), as the originals wrote them,
//! documented as `format: date-time` so that generated clients read a
//! time, not a string.

use chrono::{DateTime, Utc};
use poem_openapi::registry::MetaSchema;
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timestamp(String);

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Self {
        Self(t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
    }
}

crate::params::documented_type!(
    Timestamp,
    "string_date-time",
    MetaSchema {
        format: Some("date-time"),
        ..MetaSchema::new("string")
    }
);

impl ToJSON for Timestamp {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

/// Only for the derived request side of the types that embed it; no
/// request body carries a time.
impl ParseFromJSON for Timestamp {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(s)) if DateTime::parse_from_rfc3339(&s).is_ok() => Ok(Self(s)),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_as_the_originals_and_read_back() {
        let t = DateTime::from_timestamp(1_800_000_000, 843_608_000).expect("valid");
        let written = Timestamp::from(t);
        assert_eq!(
            written.to_json(),
            Some(Value::String("2027-01-15T08:00:00.843608Z".into()))
        );
        assert_eq!(
            Timestamp::parse_from_json(written.to_json()).expect("parses"),
            written
        );
        assert!(Timestamp::parse_from_json(Some(Value::String("yesterday".into()))).is_err());
    }
}
