//! The embedded default's secrets: generated on first start in DATA_DIR
//! (random, owner-only), so that a fresh data directory needs no
//! configuration; and the keys of Bearer tokens.

use std::path::Path;

use tooltool_jwt::JwtIssuer;

use crate::config::{JwtKey, Resolved};

/// Reads a secret file from DATA_DIR, creating it (random, owner-only) on
/// first use, so that the embedded default needs no configuration.
pub(crate) fn generated_secret(dir: &Path, name: &str) -> Result<Vec<u8>, String> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= 32 => return Ok(text.trim().as_bytes().to_vec()),
        Ok(_) => {
            return Err(format!(
                "{} is too short to be a secret; delete it to have a new one made",
                path.display()
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    let secret = format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    );
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(secret.as_bytes())
    };
    match write() {
        Ok(()) => Ok(secret.into_bytes()),
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => generated_secret(dir, name),
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    }
}

pub(crate) fn ensure_data_dir(config: &Resolved) -> Result<(), String> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("DATA_DIR: cannot create {}: {e}", config.data_dir.display()))
}

/// The secret Bearer tokens are signed with (HS256), if any.
pub fn jwt_secret(config: &Resolved) -> Result<Option<Vec<u8>>, String> {
    match &config.auth.jwt {
        JwtKey::Secret(s) => Ok(Some(s.0.as_bytes().to_vec())),
        JwtKey::PublicKeyFile(_) => Ok(None),
        JwtKey::GeneratedSecret => {
            ensure_data_dir(config)?;
            generated_secret(&config.data_dir, "jwt-secret").map(Some)
        }
    }
}

/// The key that signs browser session cookies: SESSION_SECRET, or one
/// generated in DATA_DIR (so sessions survive restarts).
pub fn session_secret(config: &Resolved) -> Result<Vec<u8>, String> {
    match &config.web.session_secret {
        Some(s) => Ok(s.0.as_bytes().to_vec()),
        None => {
            ensure_data_dir(config)?;
            generated_secret(&config.data_dir, "session-secret")
        }
    }
}

/// An issuer for `tooltool token`: the configured HS256 secret, or the
/// RS256 private key given on the command line.
pub fn jwt_issuer(config: &Resolved, private_key: Option<&Path>) -> Result<JwtIssuer, String> {
    if let Some(path) = private_key {
        let pem = std::fs::read(path)
            .map_err(|e| format!("JWT_PRIVATE_KEY: cannot read {}: {e}", path.display()))?;
        return JwtIssuer::rs256(&pem).map_err(|e| format!("JWT_PRIVATE_KEY: {e}"));
    }
    match jwt_secret(config)? {
        Some(secret) => Ok(JwtIssuer::hs256(&secret)),
        None => Err("JWT_PUBLIC_KEY is set, so tokens must be signed with the matching private key: pass --private-key (or JWT_PRIVATE_KEY)".into()),
    }
}
