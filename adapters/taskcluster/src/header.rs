use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};

/// A parsed `Authorization: Hawk ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HawkHeader {
    pub id: String,
    pub ts: i64,
    pub nonce: String,
    /// Base64 as sent.
    pub mac: String,
    /// Base64 payload hash, when the client signed the body.
    pub hash: Option<String>,
    pub ext: Option<String>,
}

fn invalid(why: impl std::fmt::Display) -> String {
    format!("malformed Hawk header: {why}")
}

impl HawkHeader {
    /// Parses `Hawk key="value", ...` strictly: known keys only, each once,
    /// values without `"` or `\`, and `id`, `ts`, `nonce`, `mac` required.
    ///
    /// # Errors
    /// A sentence for the 401 saying what is wrong.
    pub fn parse(header: &str) -> Result<Self, String> {
        let rest = header
            .trim()
            .strip_prefix("Hawk")
            .filter(|r| r.starts_with(char::is_whitespace))
            .ok_or_else(|| invalid("it must start with \"Hawk \""))?;
        let mut fields: [Option<String>; 6] = Default::default();
        const NAMES: [&str; 6] = ["id", "ts", "nonce", "mac", "hash", "ext"];
        let mut rest = rest.trim_start();
        while !rest.is_empty() {
            let (name, after) = rest
                .split_once('=')
                .ok_or_else(|| invalid("expected key=\"value\""))?;
            let name = name.trim();
            let index = NAMES
                .iter()
                .position(|n| *n == name)
                .ok_or_else(|| invalid(format!("unknown attribute {name:?}")))?;
            let after = after
                .trim_start()
                .strip_prefix('"')
                .ok_or_else(|| invalid(format!("the value of {name} must be quoted")))?;
            let (value, after) = after
                .split_once('"')
                .ok_or_else(|| invalid(format!("the value of {name} is not terminated")))?;
            if value.contains('\\') || !value.chars().all(|c| (' '..='~').contains(&c)) {
                return Err(invalid(format!(
                    "the value of {name} has forbidden characters"
                )));
            }
            if fields[index].replace(value.to_owned()).is_some() {
                return Err(invalid(format!("{name} appears twice")));
            }
            let after = after.trim_start();
            rest = match after.strip_prefix(',') {
                Some(next) => next.trim_start(),
                None if after.is_empty() => after,
                None => return Err(invalid("attributes must be separated by commas")),
            };
        }
        let [id, ts, nonce, mac, hash, ext] = fields;
        let required = |v: Option<String>, name: &str| {
            v.filter(|v| !v.is_empty())
                .ok_or_else(|| invalid(format!("{name} is missing")))
        };
        let ts = required(ts, "ts")?;
        Ok(Self {
            id: required(id, "id")?,
            ts: ts
                .parse()
                .map_err(|_| invalid(format!("ts {ts:?} is not a number of seconds")))?,
            nonce: required(nonce, "nonce")?,
            mac: required(mac, "mac")?,
            hash,
            ext,
        })
    }
}

/// Hawk's normalized request string for header authentication (its
/// arguments are the fields of the Hawk specification, in its order).
#[allow(clippy::too_many_arguments)]
pub fn normalized_string(
    ts: i64,
    nonce: &str,
    method: &str,
    resource: &str,
    host: &str,
    port: u16,
    hash: Option<&str>,
    ext: Option<&str>,
) -> String {
    format!(
        "hawk.1.header\n{ts}\n{nonce}\n{}\n{resource}\n{}\n{port}\n{}\n{}\n",
        method.to_ascii_uppercase(),
        host.to_ascii_lowercase(),
        hash.unwrap_or_default(),
        ext.unwrap_or_default()
    )
}

/// Hawk's payload hash: base64 SHA-256 of
/// `hawk.1.payload\n<mime type>\n<body>\n`, the mime type lower-case and
/// without parameters.
pub fn payload_hash(content_type: Option<&str>, body: &[u8]) -> String {
    let mime = content_type
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let mut h = Sha256::new();
    h.update(b"hawk.1.payload\n");
    h.update(mime.as_bytes());
    h.update(b"\n");
    h.update(body);
    h.update(b"\n");
    STANDARD.encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_clients_send_in_any_order() {
        let h = HawkHeader::parse(
            r#"Hawk mac="bWFj", hash="aGFzaA==", id="client/a", ts="1353832234", nonce="j4h3g2""#,
        )
        .expect("valid");
        assert_eq!(h.id, "client/a");
        assert_eq!(h.ts, 1_353_832_234);
        assert_eq!(h.nonce, "j4h3g2");
        assert_eq!(h.mac, "bWFj");
        assert_eq!(h.hash.as_deref(), Some("aGFzaA=="));
        assert_eq!(h.ext, None);
        let compact =
            HawkHeader::parse(r#"Hawk id="a",ts="1",nonce="n",mac="m",ext="e""#).expect("valid");
        assert_eq!(compact.ext.as_deref(), Some("e"));
    }

    #[test]
    fn refuses_malformed_headers_with_a_reason() {
        let cases = [
            ("Hawkid=\"a\"", "must start with"),
            ("Bearer x", "must start with"),
            (r#"Hawk id="a", ts="1", nonce="n""#, "mac is missing"),
            (r#"Hawk id="", ts="1", nonce="n", mac="m""#, "id is missing"),
            (
                r#"Hawk id="a", ts="soon", nonce="n", mac="m""#,
                "not a number",
            ),
            (
                r#"Hawk id="a", ts="1", nonce="n", mac="m", dlg="x""#,
                "unknown attribute",
            ),
            (
                r#"Hawk id="a", id="b", ts="1", nonce="n", mac="m""#,
                "appears twice",
            ),
            (r#"Hawk id=a, ts="1", nonce="n", mac="m""#, "must be quoted"),
            (r#"Hawk id="a, ts="1""#, "separated by commas"),
            (
                r#"Hawk id="a" ts="1", nonce="n", mac="m""#,
                "separated by commas",
            ),
            (
                r#"Hawk id="a\b", ts="1", nonce="n", mac="m""#,
                "forbidden characters",
            ),
            (
                r#"Hawk id="a", ts="1", nonce="n", mac="m"#,
                "not terminated",
            ),
            ("Hawk id", "expected key"),
        ];
        for (header, why) in cases {
            let err = HawkHeader::parse(header).expect_err(header);
            assert!(err.contains(why), "{header}: {err}");
        }
    }

    #[test]
    fn normalized_string_and_payload_hash_follow_hawk() {
        // The Hawk specification's own example.
        let s = normalized_string(
            1_353_832_234,
            "j4h3g2",
            "get",
            "/resource/1?b=1&a=2",
            "Example.com",
            8000,
            None,
            Some("some-app-ext-data"),
        );
        assert_eq!(
            s,
            "hawk.1.header\n1353832234\nj4h3g2\nGET\n/resource/1?b=1&a=2\nexample.com\n8000\n\nsome-app-ext-data\n"
        );
        assert_eq!(
            payload_hash(
                Some("text/plain; charset=utf-8"),
                b"Thank you for flying Hawk"
            ),
            "Yi9LfIIFRtBEPt74PVmbTF/xVAwPn7ub15ePICfgnuY="
        );
    }
}

/// What a client signs.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// Path with its query string.
    pub resource: &'a str,
    pub host: &'a str,
    pub port: u16,
    /// `(content type, body)`: signed as a payload hash when given.
    pub payload: Option<(&'a str, &'a [u8])>,
}

/// Builds the `Authorization` header the way the Mozilla client
/// (`tooltool.py`) does: HMAC-SHA256 keyed by the access token, a payload
/// hash when there is a body, no `ext`, attributes in its order. Used by
/// tests and the benchmark to speak exactly like the real client.
pub fn sign(
    client_id: &str,
    access_token: &str,
    ts: i64,
    nonce: &str,
    request: &SignedRequest<'_>,
) -> String {
    sign_with_ext(client_id, access_token, ts, nonce, request, None)
}

/// [`sign`] with Hawk's `ext` (base64 JSON), which carries the
/// certificate of temporary Taskcluster credentials.
pub fn sign_with_ext(
    client_id: &str,
    access_token: &str,
    ts: i64,
    nonce: &str,
    request: &SignedRequest<'_>,
    ext: Option<&str>,
) -> String {
    use hmac::Mac as _;
    let hash = request
        .payload
        .map(|(content_type, body)| payload_hash(Some(content_type), body));
    let normalized = normalized_string(
        ts,
        nonce,
        request.method,
        request.resource,
        request.host,
        request.port,
        hash.as_deref(),
        ext,
    );
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(access_token.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(normalized.as_bytes());
    let mac = STANDARD.encode(mac.finalize().into_bytes());
    let mut header = format!(r#"Hawk mac="{mac}""#);
    if let Some(hash) = hash {
        header.push_str(&format!(r#", hash="{hash}""#));
    }
    header.push_str(&format!(
        r#", id="{client_id}", ts="{ts}", nonce="{nonce}""#
    ));
    if let Some(ext) = ext {
        header.push_str(&format!(r#", ext="{ext}""#));
    }
    header
}
