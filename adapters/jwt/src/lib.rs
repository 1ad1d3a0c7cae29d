//! `Authorization: Bearer <JWT>`: HS256 with a shared secret or RS256 with a
//! public key, claims `sub`, `scopes` and `exp` required.
//!
//! Expiry is judged against the [`Clock`] port rather than the host clock,
//! like every other expiry in the service, so it is testable without sleeping.

use std::sync::Arc;

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use tooltool_domain::{Principal, ScopeSet, check_principal_id};
use tooltool_ports::{AuthError, AuthRequest, Authenticator, Clock};

/// The claims tooltool reads and writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub scopes: Vec<String>,
    /// Seconds since the Unix epoch.
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Not valid before (seconds since the Unix epoch), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("invalid key: {0}")]
    Invalid(String),
}

pub struct JwtAuthenticator {
    key: DecodingKey,
    algorithm: Algorithm,
    clock: Arc<dyn Clock>,
    /// Tokens that verified, by their text. Verifying one (base64, two
    /// JSON documents, the MAC or RSA signature, the scope set) costs more
    /// than the rest of a download, and a build job sends the same token
    /// thousands of times. Only tokens that verified enter, so a stranger
    /// cannot fill it; expiry and `nbf` are judged against the clock on
    /// every use; a JWT cannot be revoked, so keeping it changes nothing
    /// about who is let in.
    verified: moka::sync::Cache<Box<str>, Arc<Verified>>,
}

/// What a verified token says, kept for its next uses.
#[derive(Debug)]
struct Verified {
    sub: String,
    scopes: ScopeSet,
    exp: i64,
    nbf: Option<i64>,
}

/// The most bytes of verified tokens kept (at ~1 KiB a token, 16 Ki
/// tokens), and the longest one is kept before it is verified again.
const VERIFIED_BYTES: u64 = 16 * 1024 * 1024;
const VERIFIED_FOR: std::time::Duration = std::time::Duration::from_secs(10 * 60);

fn verified_cache() -> moka::sync::Cache<Box<str>, Arc<Verified>> {
    moka::sync::Cache::<Box<str>, Arc<Verified>>::builder()
        .max_capacity(VERIFIED_BYTES)
        .weigher(|token, v| u32::try_from(token.len() + v.sub.len() + 256).unwrap_or(u32::MAX))
        .time_to_live(VERIFIED_FOR)
        .build()
}

impl Verified {
    /// Whether the token is valid at `now` (seconds since the epoch).
    fn check(&self, now: i64) -> Result<(), AuthError> {
        if self.exp <= now {
            return Err(invalid("it has expired".into()));
        }
        if self.nbf.is_some_and(|nbf| nbf > now) {
            return Err(invalid(
                "it is not valid yet (its 'nbf' is in the future)".into(),
            ));
        }
        Ok(())
    }
}

fn invalid(why: String) -> AuthError {
    AuthError::Invalid(format!("invalid bearer token: {why}"))
}

impl std::fmt::Debug for JwtAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuthenticator")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl JwtAuthenticator {
    pub fn hs256(secret: &[u8], clock: Arc<dyn Clock>) -> Self {
        Self {
            key: DecodingKey::from_secret(secret),
            algorithm: Algorithm::HS256,
            clock,
            verified: verified_cache(),
        }
    }

    pub fn rs256(public_pem: &[u8], clock: Arc<dyn Clock>) -> Result<Self, KeyError> {
        Ok(Self {
            key: DecodingKey::from_rsa_pem(public_pem)
                .map_err(|e| KeyError::Invalid(e.to_string()))?,
            algorithm: Algorithm::RS256,
            clock,
            verified: verified_cache(),
        })
    }

    /// The token's claims if its form and signature verify (its times
    /// are judged by [`Verified::check`]).
    fn decode(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            // `alg: none` and unknown names fail here: serde has no variant for them.
            ErrorKind::Json(_) => {
                invalid("its header is malformed or names an unsupported algorithm".into())
            }
            _ => invalid("it is not a well-formed JWT".into()),
        })?;
        if header.alg != self.algorithm {
            return Err(invalid(format!(
                "it is signed with {:?}, this server accepts only {:?}",
                header.alg, self.algorithm
            )));
        }
        let mut validation = Validation::new(self.algorithm);
        // Expiry is checked below against the Clock port; presence here.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &validation).map_err(|e| {
            match e.kind() {
                ErrorKind::InvalidSignature => invalid("its signature does not verify".into()),
                ErrorKind::MissingRequiredClaim(c) => {
                    invalid(format!("the claim '{c}' is missing"))
                }
                ErrorKind::Json(j) => invalid(format!("its claims are malformed ({j})")),
                ErrorKind::InvalidAlgorithm => invalid("its algorithm is not accepted".into()),
                other => invalid(format!("{other:?}")),
            }
        })?;
        // The principal id becomes a batch's author and goes into logs.
        check_principal_id(&data.claims.sub)
            .map_err(|why| invalid(format!("the claim 'sub' {why}")))?;
        Ok(data.claims)
    }
}

#[async_trait]
impl Authenticator for JwtAuthenticator {
    fn scheme(&self) -> &'static str {
        "Bearer"
    }

    async fn authenticate(&self, request: &AuthRequest) -> Result<Principal, AuthError> {
        let token = request
            .credentials
            .split_once(' ')
            .map(|(_, t)| t.trim())
            .unwrap_or_default();
        if token.is_empty() {
            return Err(AuthError::Invalid("the Bearer credential is empty".into()));
        }
        let now = self.clock.now().timestamp();
        let verified = match self.verified.get(token) {
            Some(v) => v,
            None => {
                let claims = self.decode(token)?;
                let v = Arc::new(Verified {
                    sub: claims.sub,
                    scopes: ScopeSet::new(claims.scopes),
                    exp: claims.exp,
                    nbf: claims.nbf,
                });
                // Kept even when not valid now: its times are judged on
                // every use, and its form and signature never change.
                self.verified.insert(token.into(), Arc::clone(&v));
                v
            }
        };
        verified.check(now)?;
        Ok(Principal::authenticated(
            verified.sub.clone(),
            verified.scopes.clone(),
        ))
    }
}

/// Mints tokens (the `tooltool token` command and tests).
pub struct JwtIssuer {
    key: EncodingKey,
    algorithm: Algorithm,
}

impl std::fmt::Debug for JwtIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtIssuer")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl JwtIssuer {
    pub fn hs256(secret: &[u8]) -> Self {
        Self {
            key: EncodingKey::from_secret(secret),
            algorithm: Algorithm::HS256,
        }
    }

    pub fn rs256(private_pem: &[u8]) -> Result<Self, KeyError> {
        Ok(Self {
            key: EncodingKey::from_rsa_pem(private_pem)
                .map_err(|e| KeyError::Invalid(e.to_string()))?,
            algorithm: Algorithm::RS256,
        })
    }

    pub fn issue(&self, claims: &Claims) -> Result<String, KeyError> {
        jsonwebtoken::encode(&Header::new(self.algorithm), claims, &self.key)
            .map_err(|e| KeyError::Invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    struct Fixed(DateTime<Utc>);
    impl Clock for Fixed {
        fn now(&self) -> DateTime<Utc> {
            self.0
        }
    }

    const NOW: i64 = 1_800_000_000;

    fn auth() -> JwtAuthenticator {
        JwtAuthenticator::hs256(
            b"secret",
            Arc::new(Fixed(DateTime::from_timestamp(NOW, 0).expect("valid"))),
        )
    }

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "alice".into(),
            scopes: vec!["a".into(), "b*".into()],
            exp,
            iat: None,
            nbf: None,
        }
    }

    fn request(token: &str) -> AuthRequest {
        AuthRequest {
            credentials: format!("Bearer {token}"),
            ..AuthRequest::default()
        }
    }

    fn b64(s: &str) -> String {
        // Minimal unpadded base64url for hand-made tokens.
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let b = s.as_bytes();
        let mut out = String::new();
        for c in b.chunks(3) {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for i in 0..=c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    #[tokio::test]
    async fn valid_token_yields_principal() {
        let token = JwtIssuer::hs256(b"secret")
            .issue(&claims(NOW + 60))
            .expect("issue");
        let p = auth().authenticate(&request(&token)).await.expect("valid");
        assert_eq!(p.id(), Some("alice"));
        assert!(p.scopes().satisfies("a"));
        assert!(p.scopes().satisfies("bcd"));
        // A token that became valid in the past is valid.
        let mut started = claims(NOW + 60);
        started.nbf = Some(NOW);
        let token = JwtIssuer::hs256(b"secret").issue(&started).expect("issue");
        assert!(auth().authenticate(&request(&token)).await.is_ok());
    }

    /// A clock the test moves.
    struct Moving(std::sync::Mutex<i64>);
    impl Clock for Moving {
        fn now(&self) -> DateTime<Utc> {
            DateTime::from_timestamp(*self.0.lock().expect("clock"), 0).expect("valid")
        }
    }

    /// A token verified once is answered from memory after, but its times
    /// are still judged on every use, and only that exact text hits.
    #[tokio::test]
    async fn verified_tokens_are_kept_and_still_expire() {
        let clock = Arc::new(Moving(std::sync::Mutex::new(NOW - 10)));
        let auth = JwtAuthenticator::hs256(b"secret", clock.clone());
        let mut c = claims(NOW + 60);
        c.nbf = Some(NOW);
        let token = JwtIssuer::hs256(b"secret").issue(&c).expect("issue");
        let early = auth.authenticate(&request(&token)).await.expect_err("nbf");
        assert!(early.to_string().contains("not valid yet"), "{early}");
        *clock.0.lock().expect("clock") = NOW;
        let p = auth
            .authenticate(&request(&token))
            .await
            .expect("valid now");
        assert_eq!(p.id(), Some("alice"));
        assert!(p.scopes().satisfies("bcd"));
        auth.verified.run_pending_tasks();
        assert_eq!(auth.verified.entry_count(), 1, "kept once");
        // A different text (its signature's last character changed) is
        // verified on its own, and fails.
        let mut forged = token.clone();
        let last = forged.pop().expect("char");
        forged.push(if last == 'A' { 'B' } else { 'A' });
        assert!(auth.authenticate(&request(&forged)).await.is_err());
        *clock.0.lock().expect("clock") = NOW + 60;
        let late = auth
            .authenticate(&request(&token))
            .await
            .expect_err("expired");
        assert!(late.to_string().contains("expired"), "{late}");
    }

    const PRIVATE: &[u8] = include_bytes!("../tests/fixtures/rs256-private.pem");
    const PUBLIC: &[u8] = include_bytes!("../tests/fixtures/rs256-public.pem");

    #[tokio::test]
    async fn rs256_tokens_verify_with_the_public_key_only() {
        let clock = Arc::new(Fixed(DateTime::from_timestamp(NOW, 0).expect("valid")));
        let auth = JwtAuthenticator::rs256(PUBLIC, clock).expect("public key");
        let token = JwtIssuer::rs256(PRIVATE)
            .expect("private key")
            .issue(&claims(NOW + 60))
            .expect("issue");
        let p = auth
            .authenticate(&request(&token))
            .await
            .expect("valid RS256 token");
        assert_eq!(p.id(), Some("alice"));
        // Algorithm confusion: an HS256 token "signed" with the public key
        // as a shared secret must not pass an RS256 verifier.
        let forged = JwtIssuer::hs256(PUBLIC)
            .issue(&claims(NOW + 60))
            .expect("issue");
        match auth.authenticate(&request(&forged)).await {
            Err(AuthError::Invalid(msg)) => assert!(msg.contains("HS256"), "{msg}"),
            other => panic!("forged token accepted: {other:?}"),
        }
        assert!(
            JwtAuthenticator::rs256(
                b"not a key",
                Arc::new(Fixed(DateTime::from_timestamp(NOW, 0).expect("valid")))
            )
            .is_err()
        );
    }

    #[tokio::test]
    async fn refusals_say_why() {
        let good = |exp| {
            JwtIssuer::hs256(b"secret")
                .issue(&claims(exp))
                .expect("issue")
        };
        let other_key = JwtIssuer::hs256(b"other")
            .issue(&claims(NOW + 60))
            .expect("issue");
        let hs384 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS384),
            &claims(NOW + 60),
            &EncodingKey::from_secret(b"secret"),
        )
        .expect("encode");
        let none = format!(
            "{}.{}.",
            b64(r#"{"alg":"none","typ":"JWT"}"#),
            b64(&format!(
                r#"{{"sub":"x","scopes":["*"],"exp":{}}}"#,
                NOW + 60
            ))
        );
        let no_exp = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": "x", "scopes": []}),
            &EncodingKey::from_secret(b"secret"),
        )
        .expect("encode");
        let no_scopes = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": "x", "exp": NOW + 60}),
            &EncodingKey::from_secret(b"secret"),
        )
        .expect("encode");
        let with = |change: &dyn Fn(&mut Claims)| {
            let mut c = claims(NOW + 60);
            change(&mut c);
            JwtIssuer::hs256(b"secret").issue(&c).expect("issue")
        };
        let not_yet = with(&|c| c.nbf = Some(NOW + 30));
        let nul_sub = with(&|c| c.sub = "ali\0ce".into());
        let newline_sub = with(&|c| c.sub = "alice\nFAKE LOG LINE".into());
        let long_sub = with(&|c| c.sub = "a".repeat(257));
        let cases = [
            (not_yet, "not valid yet"),
            (nul_sub, "'sub' contains control characters"),
            (newline_sub, "'sub' contains control characters"),
            (long_sub, "'sub' is longer than 256 bytes"),
            (good(NOW - 1), "it has expired"),
            (good(NOW), "it has expired"),
            (other_key, "signature does not verify"),
            (hs384, "HS384"),
            (none, "unsupported algorithm"),
            (no_exp, "missing field `exp`"),
            (no_scopes, "claims are malformed"),
            ("garbage".to_owned(), "not a well-formed JWT"),
        ];
        for (token, why) in cases {
            match auth().authenticate(&request(&token)).await {
                Err(AuthError::Invalid(msg)) => assert!(msg.contains(why), "{msg:?} lacks {why:?}"),
                other => panic!("{token}: expected a refusal, got {other:?}"),
            }
        }
    }
}
