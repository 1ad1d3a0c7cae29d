//! The request schemas the OpenAPI document publishes (what generated
//! clients are built from) and the hand-written parser that serves
//! requests (`model.rs`, for messages that name the member at fault) accept
//! and refuse the same bodies.
//!
//! The bodies are checked against the served document itself, with a
//! validator of the JSON Schema subset poem-openapi emits (`$ref`, `type`,
//! `format: uint64`, `enum`, `pattern`, `required`, `properties`,
//! `additionalProperties`, `items`, `maxItems`, `anyOf`, `oneOf`, `allOf`): poem-openapi's own
//! runtime parsing is more lenient than what it documents (it takes a
//! number for a string), so it would not test the document.

use serde_json::{Map, Value, json};

use crate::model::{PatchBody, UploadBody};
use crate::payload::FromJsonBody;
use crate::resolve::FetchBody;

struct Document(Value);

impl Document {
    fn served() -> Self {
        let text = crate::openapi_json("http://127.0.0.1:8000");
        Self(serde_json::from_str(&text).expect("the document is JSON"))
    }

    /// The request body schema of `method path`.
    fn request_schema(&self, path: &str, method: &str) -> &Value {
        &self.0["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    }

    fn resolve<'s>(&'s self, schema: &'s Value) -> &'s Value {
        match schema["$ref"].as_str() {
            Some(r) => {
                let name = r.trim_start_matches("#/components/schemas/");
                self.resolve(&self.0["components"]["schemas"][name])
            }
            None => schema,
        }
    }

    fn valid(&self, schema: &Value, value: &Value) -> bool {
        let schema = self.resolve(schema);
        let of = |key: &str| schema[key].as_array().cloned().unwrap_or_default();
        if !of("allOf").iter().all(|s| self.valid(s, value)) {
            return false;
        }
        let any = of("anyOf");
        if !any.is_empty() && !any.iter().any(|s| self.valid(s, value)) {
            return false;
        }
        let one = of("oneOf");
        if !one.is_empty() && one.iter().filter(|s| self.valid(s, value)).count() != 1 {
            return false;
        }
        if let Some(allowed) = schema["enum"].as_array()
            && !allowed.contains(value)
        {
            return false;
        }
        match schema["type"].as_str() {
            None => true,
            Some("string") => value
                .as_str()
                .is_some_and(|s| match schema["pattern"].as_str() {
                    Some(p) => regex::Regex::new(p).expect("pattern").is_match(s),
                    None => true,
                }),
            Some("integer") => match schema["format"].as_str() {
                Some("uint64") => value.as_u64().is_some(),
                _ => value.as_i64().is_some(),
            },
            Some("boolean") => value.is_boolean(),
            Some("array") => value.as_array().is_some_and(|items| {
                schema["maxItems"]
                    .as_u64()
                    .is_none_or(|max| items.len() as u64 <= max)
                    && items.iter().all(|v| self.valid(&schema["items"], v))
            }),
            Some("object") => value
                .as_object()
                .is_some_and(|object| self.valid_object(schema, object)),
            Some(other) => panic!("the validator does not know type {other:?}"),
        }
    }

    fn valid_object(&self, schema: &Value, object: &Map<String, Value>) -> bool {
        let required = schema["required"].as_array().cloned().unwrap_or_default();
        let properties = schema["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        required
            .iter()
            .all(|r| r.as_str().is_some_and(|r| object.contains_key(r)))
            && object.iter().all(|(name, v)| match properties.get(name) {
                Some(s) => self.valid(s, v),
                None => match &schema["additionalProperties"] {
                    Value::Null | Value::Bool(true) => true,
                    Value::Bool(false) => false,
                    s => self.valid(s, v),
                },
            })
    }
}

fn agree<Parsed: FromJsonBody + std::fmt::Debug>(path: &str, method: &str, bodies: &[Value]) {
    let document = Document::served();
    let schema = document.request_schema(path, method);
    assert!(!schema.is_null(), "{method} {path} documents its body");
    for body in bodies {
        let parsed = Parsed::from_json(body.clone());
        assert_eq!(
            document.valid(schema, body),
            parsed.is_ok(),
            "{method} {path} {body}: the parser says {parsed:?}"
        );
    }
}

fn declared(size: Value, digest: &str, algorithm: &str, visibility: &str) -> Value {
    json!({"size": size, "digest": digest, "algorithm": algorithm, "visibility": visibility})
}

#[test]
fn upload_bodies() {
    let d = "0123456789abcdef".repeat(8);
    let ok = declared(json!(1), &d, "sha512", "public");
    let one = |file: Value| json!({"message": "m", "files": {"a": file}});
    agree::<UploadBody>(
        "/upload",
        "post",
        &[
            one(ok.clone()),
            // Rules of the use case, not of the body's shape: both accept.
            json!({"message": "", "files": {}}),
            json!({"message": "m", "author": "me", "files": {"a": ok}}),
            json!({"message": "m", "files": {"a/b": ok, "": ok}}),
            json!({"message": "m", "files": {"a": ok}, "extra": 1}),
            one(declared(json!(u64::MAX), &d, "sha512", "internal")),
            // Shapes both refuse.
            json!([]),
            json!("text"),
            json!(null),
            json!({"files": {"a": ok}}),
            json!({"message": "m"}),
            json!({"message": 5, "files": {"a": ok}}),
            json!({"message": null, "files": {"a": ok}}),
            json!({"message": "m", "files": []}),
            one(json!(1)),
            one(declared(json!(-1), &d, "sha512", "public")),
            one(declared(json!(1.5), &d, "sha512", "public")),
            one(declared(json!("1"), &d, "sha512", "public")),
            one(declared(json!(1), "abc", "sha512", "public")),
            one(declared(json!(1), &d.to_uppercase(), "sha512", "public")),
            one(declared(json!(1), &"g".repeat(128), "sha512", "public")),
            one(declared(json!(1), &format!("{d}0"), "sha512", "public")),
            one(declared(json!(1), &format!("{d}\n"), "sha512", "public")),
            one(declared(json!(1), &d, "md5", "public")),
            one(declared(json!(1), &d, "sha512", "secret")),
            one(json!({"digest": d, "algorithm": "sha512", "visibility": "public"})),
            one(json!({"size": 1, "algorithm": "sha512", "visibility": "public"})),
            one(json!({"size": 1, "digest": d, "visibility": "public"})),
            one(json!({"size": 1, "digest": d, "algorithm": "sha512"})),
        ],
    );
}

#[test]
fn patch_bodies() {
    agree::<PatchBody>(
        "/file/sha512/{digest}",
        "patch",
        &[
            json!([]),
            json!([{"op": "set_visibility", "visibility": "internal"}, {"op": "delete_instances"}]),
            json!([{"op": "delete_instances", "extra": true}]),
            json!({}),
            json!(null),
            json!([1]),
            json!([{"op": "explode"}]),
            json!([{"op": "set_visibility"}]),
            json!([{"op": "set_visibility", "visibility": "secret"}]),
            json!([{"visibility": "public"}]),
            json!([{"op": 5}]),
        ],
    );
}

#[test]
fn fetch_bodies() {
    let d = "0123456789abcdef".repeat(8);
    agree::<FetchBody>(
        "/fetch",
        "post",
        &[
            json!({"digests": []}),
            json!({"digests": [d, d]}),
            json!({"digests": [d], "region": "west"}),
            json!({"digests": vec![d.clone(); tooltool_ports::MAX_RESOLVE]}),
            json!({"digests": vec![d.clone(); tooltool_ports::MAX_RESOLVE + 1]}),
            json!({}),
            json!([d]),
            json!(null),
            json!({"digests": d}),
            json!({"digests": [1]}),
            json!({"digests": [d.to_uppercase()]}),
            json!({"digests": [format!("{d}0")]}),
            json!({"digests": null}),
        ],
    );
}

/// Every parameter the document names agrees with what requests get: a
/// digest has the digest pattern (the one the parser applies), `q` is
/// required, bodies can be refused with 415, and the page budget of batch
/// searches is the domain's.
#[test]
fn parameters_and_statuses_are_documented() {
    let doc = Document::served();
    let digest = regex::Regex::new(crate::params::DIGEST_PATTERN).expect("pattern");
    let mut digests = 0;
    for (path, item) in doc.0["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operations") {
            for param in op["parameters"].as_array().into_iter().flatten() {
                let name = param["name"].as_str().expect("name");
                if name == "digest" || name == "after" {
                    digests += 1;
                    assert_eq!(
                        param["schema"]["pattern"],
                        crate::params::DIGEST_PATTERN,
                        "{method} {path} {name}"
                    );
                }
                if name == "q" {
                    assert_eq!(param["required"], true, "{method} {path}");
                    assert_eq!(
                        param["schema"]["pattern"],
                        crate::params::SEARCH_TERM_PATTERN,
                        "{method} {path}"
                    );
                }
                if matches!(name, "limit" | "before" | "id") {
                    assert_eq!(param["schema"]["type"], "integer", "{method} {path} {name}");
                }
                if name == "limit" {
                    assert_eq!(
                        (&param["schema"]["minimum"], &param["schema"]["maximum"]),
                        (
                            &serde_json::json!(1.0),
                            &serde_json::json!(tooltool_domain::MAX_PAGE_LIMIT as f64)
                        ),
                        "{method} {path}"
                    );
                }
            }
            let has_body = op.get("requestBody").is_some();
            assert_eq!(
                op["responses"].get("415").is_some(),
                has_body,
                "{method} {path}: 415 documented exactly where a body is read"
            );
        }
    }
    assert!(digests >= 5, "digest parameters found: {digests}");
    assert!(digest.is_match(&"a".repeat(128)));
    assert!(!digest.is_match(&"A".repeat(128)));
    for (d, ok) in [("a".repeat(128), true), ("A".repeat(128), false)] {
        assert_eq!(
            tooltool_domain::Digest::parse(&d).is_ok(),
            ok,
            "the pattern is the parser's"
        );
    }
    // The search-term pattern refuses exactly what the domain refuses.
    let term = regex::Regex::new(crate::params::SEARCH_TERM_PATTERN).expect("pattern");
    for q in [
        "clang",
        "tab\there",
        "nul\0",
        "esc\u{1b}",
        "c1\u{94}",
        "del\u{7f}",
        "é ü 😀",
    ] {
        assert_eq!(
            term.is_match(q),
            tooltool_domain::check_search_term(q).is_ok(),
            "{q:?}"
        );
    }
    let search = doc.0["paths"]["/upload"]["get"]["description"]
        .as_str()
        .expect("description");
    assert!(
        search.contains(&format!("above {}", tooltool_domain::MAX_FILES_PER_PAGE))
            && search.contains(&format!("at most {}", tooltool_domain::MAX_FILES_PER_BATCH)),
        "{search}"
    );
}
