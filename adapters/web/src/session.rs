//! Browser sessions: one HttpOnly cookie holding who signed in (principal
//! id and the scopes that bear on tooltool), when the session ends, and
//! the session's CSRF token, signed with HMAC-SHA256 under the server's
//! session key. The user's credentials are never in it: a token pasted at
//! sign-in, or the Taskcluster credentials of the OAuth2 flow, are used
//! once to learn the principal and dropped.
//!
//! A visitor who has not signed in gets an anonymous session (no
//! principal) only when a page shows a form, so that the sign-in form has
//! a CSRF token too. Anything wrong with a cookie (forged, expired,
//! malformed, too large) makes it no session at all: the visitor is
//! anonymous, never an error.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::Mac as _;
use poem::Request;
use poem::http::header;
use serde::{Deserialize, Serialize};
use tooltool_domain::{Permissions, Principal, ScopeSet};

/// The cookie's name.
pub const COOKIE: &str = "tooltool_session";

/// Browsers keep cookies up to 4096 bytes; a session must fit with room
/// for the attributes.
const MAX_COOKIE_VALUE: usize = 3800;

/// Tells what the signature covers apart from any other use of the key.
const CONTEXT: &[u8] = b"tooltool web session v1\n";

type Hmac = hmac::Hmac<sha2::Sha256>;

/// How sessions are signed and sent.
#[derive(Clone)]
pub struct Sessions {
    key: Vec<u8>,
    lifetime: Duration,
    /// `Secure` cookies: the public URL is https.
    secure: bool,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("lifetime", &self.lifetime)
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct Claims {
    /// Principal id; absent for an anonymous session.
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    principal: Option<String>,
    #[serde(rename = "s", default, skip_serializing_if = "Vec::is_empty")]
    scopes: Vec<String>,
    /// Unix seconds after which the session is gone.
    #[serde(rename = "e")]
    expires: i64,
    /// The CSRF token every form of this session carries.
    #[serde(rename = "c")]
    csrf: String,
}

/// A verified session.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    pub csrf: String,
    pub expires: DateTime<Utc>,
}

impl Session {
    pub fn is_signed_in(&self) -> bool {
        !self.principal.is_anonymous()
    }

    /// Whether a submitted form's token is this session's (in constant
    /// time: the comparison must not tell how much of a guess was right).
    pub fn accepts(&self, token: &str) -> bool {
        use subtle::ConstantTimeEq as _;
        !token.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(token.as_bytes()))
    }
}

/// Why a session cannot be made.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TooLarge(String);

impl Sessions {
    /// `key` MUST be secret and at least 32 bytes; sessions last `lifetime`.
    pub fn new(key: Vec<u8>, lifetime: Duration, secure: bool) -> Self {
        Self {
            key,
            lifetime,
            secure,
        }
    }

    fn mac(&self, payload: &str) -> Hmac {
        let mut mac = Hmac::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(CONTEXT);
        mac.update(payload.as_bytes());
        mac
    }

    /// The session a request's cookie holds, if it is valid now.
    pub fn read(&self, req: &Request, now: DateTime<Utc>) -> Option<Session> {
        let value = req
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))?;
        self.verify(value, now)
    }

    fn verify(&self, value: &str, now: DateTime<Utc>) -> Option<Session> {
        if value.len() > MAX_COOKIE_VALUE {
            return None;
        }
        let (payload, signature) = value.split_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        self.mac(payload).verify_slice(&signature).ok()?;
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let expires = DateTime::from_timestamp(claims.expires, 0)?;
        if expires <= now {
            return None;
        }
        let principal = match claims.principal {
            Some(id) => Principal::authenticated(id, ScopeSet::new(claims.scopes)),
            None => Principal::anonymous(),
        };
        Some(Session {
            principal,
            csrf: claims.csrf,
            expires,
        })
    }

    /// A new session for `principal` (anonymous: a form's CSRF token only),
    /// with a new CSRF token, as a `Set-Cookie` value. Only the scopes
    /// that bear on tooltool are kept.
    ///
    /// # Errors
    /// When even those scopes do not fit in a cookie.
    pub fn start(
        &self,
        principal: &Principal,
        permissions: &Permissions,
        now: DateTime<Utc>,
    ) -> Result<(Session, String), TooLarge> {
        let lifetime = chrono::Duration::from_std(self.lifetime).unwrap_or(chrono::Duration::MAX);
        let expires = now.checked_add_signed(lifetime).unwrap_or(now);
        let scopes: Vec<String> = permissions
            .relevant_scopes(principal.scopes())
            .into_iter()
            .map(str::to_owned)
            .collect();
        let claims = Claims {
            principal: principal.id().map(str::to_owned),
            scopes: scopes.clone(),
            expires: expires.timestamp(),
            csrf: format!("{:032x}", rand::random::<u128>()),
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("plain JSON"));
        let signature = URL_SAFE_NO_PAD.encode(self.mac(&payload).finalize().into_bytes());
        let value = format!("{payload}.{signature}");
        if value.len() > MAX_COOKIE_VALUE {
            return Err(TooLarge(format!(
                "{} tooltool scopes are too many to keep in a browser session",
                scopes.len()
            )));
        }
        let session = Session {
            principal: match &claims.principal {
                Some(id) => Principal::authenticated(id.clone(), ScopeSet::new(scopes)),
                None => Principal::anonymous(),
            },
            csrf: claims.csrf,
            expires,
        };
        Ok((session, self.cookie(&value, self.lifetime.as_secs())))
    }

    /// The `Set-Cookie` value that ends the session.
    pub fn end(&self) -> String {
        self.cookie("", 0)
    }

    fn cookie(&self, value: &str, max_age: u64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "project:releng:services/tooltool/api";

    fn sessions() -> Sessions {
        Sessions::new(vec![7; 32], Duration::from_secs(3600), true)
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).expect("time")
    }

    fn request(cookie: &str) -> Request {
        Request::builder().header(header::COOKIE, cookie).finish()
    }

    fn value(set_cookie: &str) -> &str {
        set_cookie
            .strip_prefix("tooltool_session=")
            .and_then(|v| v.split(';').next())
            .expect("cookie value")
    }

    fn alice() -> Principal {
        Principal::authenticated(
            "alice",
            ScopeSet::new([format!("{PREFIX}/manage"), "queue:create-task:*".to_owned()]),
        )
    }

    #[test]
    fn a_started_session_reads_back_until_it_expires() {
        let s = sessions();
        let permissions = Permissions::new(PREFIX, true);
        let (started, set_cookie) = s.start(&alice(), &permissions, now()).expect("fits");
        assert!(set_cookie.ends_with("; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax; Secure"));
        let cookie = format!("other=1; tooltool_session={}; x=y", value(&set_cookie));
        let read = s.read(&request(&cookie), now()).expect("valid");
        assert_eq!(read.principal.id(), Some("alice"));
        assert_eq!(
            read.principal.scopes().iter().collect::<Vec<_>>(),
            [format!("{PREFIX}/manage")],
            "only the scopes that bear on tooltool"
        );
        assert!(read.accepts(&started.csrf));
        assert!(!read.accepts(""));
        assert!(!read.accepts("0123"));
        let later = now() + chrono::Duration::seconds(3600);
        assert!(s.read(&request(&cookie), later).is_none(), "expired");
    }

    #[test]
    fn forged_and_malformed_cookies_are_no_session() {
        let s = sessions();
        let permissions = Permissions::new(PREFIX, true);
        let (_, set_cookie) = s.start(&alice(), &permissions, now()).expect("fits");
        let good = value(&set_cookie);
        let (payload, signature) = good.split_once('.').expect("signed");
        let forged_payload =
            URL_SAFE_NO_PAD.encode(br#"{"p":"mallory","s":["*"],"e":9999999999,"c":"x"}"#);
        let other_key = Sessions::new(vec![8; 32], Duration::from_secs(3600), true);
        let (_, other) = other_key
            .start(&alice(), &permissions, now())
            .expect("fits");
        for bad in [
            format!("{forged_payload}.{signature}"),
            format!("{payload}.{}", URL_SAFE_NO_PAD.encode([0u8; 32])),
            value(&other).to_owned(),
            payload.to_owned(),
            format!("{payload}."),
            ".".to_owned(),
            "%%%.***".to_owned(),
            "a".repeat(5000),
        ] {
            let cookie = format!("tooltool_session={bad}");
            assert!(s.read(&request(&cookie), now()).is_none(), "{bad}");
        }
    }

    #[test]
    fn anonymous_sessions_carry_a_token_only() {
        let s = sessions();
        let (session, set_cookie) = s
            .start(
                &Principal::anonymous(),
                &Permissions::new(PREFIX, true),
                now(),
            )
            .expect("fits");
        assert!(!session.is_signed_in());
        let read = s
            .read(
                &request(&format!("tooltool_session={}", value(&set_cookie))),
                now(),
            )
            .expect("valid");
        assert!(!read.is_signed_in());
        assert_eq!(read.csrf, session.csrf);
    }

    #[test]
    fn too_many_scopes_are_refused_and_ending_clears() {
        let s = sessions();
        let many = Principal::authenticated(
            "bob",
            ScopeSet::new((0..200).map(|i| format!("{PREFIX}/download/x{i}"))),
        );
        assert!(
            s.start(&many, &Permissions::new(PREFIX, true), now())
                .is_err()
        );
        assert_eq!(
            s.end(),
            "tooltool_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax; Secure"
        );
    }
}
