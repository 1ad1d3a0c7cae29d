//! What runs, in words: the start-up line's metadata store, storage
//! regions, authenticators and background jobs, from the resolved
//! configuration (never a secret).

use std::time::Duration;

use super::{Database, HawkVerifier, JwtKey, Regions, Resolved};

/// The parts of the start-up line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub metadata: String,
    pub storage: String,
    pub auth: String,
    pub jobs: String,
}

/// `user@host:port/db` of a PostgreSQL URL, without its password or
/// parameters.
fn postgres_place(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    match rest.rsplit_once('@') {
        Some((userinfo, place)) => {
            let user = userinfo.split(':').next().unwrap_or(userinfo);
            format!("{user}@{place}")
        }
        None => rest.to_owned(),
    }
}

fn every(what: &str, interval: Duration) -> String {
    if interval.is_zero() {
        format!("{what} off")
    } else {
        format!("{what} every {}", humantime::format_duration(interval))
    }
}

impl Resolved {
    #[must_use]
    pub fn summary(&self) -> Summary {
        let metadata = match &self.database {
            Database::Sqlite => format!(
                "SQLite {}",
                self.data_dir.join("tooltool.sqlite3").display()
            ),
            Database::Postgres { url, pool_size, .. } => format!(
                "PostgreSQL {} (pool of {pool_size})",
                postgres_place(&url.0)
            ),
        };
        let mut storage = match &self.storage.regions {
            Regions::Local(regions) => {
                let list: Vec<String> = regions
                    .iter()
                    .map(|(name, path)| format!("{name}={}", path.display()))
                    .collect();
                format!("local directories {}", list.join(", "))
            }
            Regions::S3 {
                regions,
                signing_region,
                ..
            } => {
                let list: Vec<String> = regions
                    .iter()
                    .map(|b| {
                        let place = b.endpoint.as_deref().unwrap_or("AWS");
                        format!("{}={} at {place}", b.region, b.bucket)
                    })
                    .collect();
                let signing = signing_region
                    .as_deref()
                    .map(|r| format!(" (endpoints signed for {r})"))
                    .unwrap_or_default();
                format!("S3 {}{signing}", list.join(", "))
            }
        };
        if let Some(cdn) = &self.storage.cloudfront {
            storage.push_str(&format!(
                ", downloads through CloudFront {} (key {})",
                cdn.host, cdn.key_id
            ));
        }
        let jwt = match &self.auth.jwt {
            JwtKey::Secret(_) => "Bearer JWT (HS256, JWT_SECRET)".to_owned(),
            JwtKey::GeneratedSecret => format!(
                "Bearer JWT (HS256, {})",
                self.data_dir.join("jwt-secret").display()
            ),
            JwtKey::PublicKeyFile(path) => format!("Bearer JWT (RS256, {})", path.display()),
        };
        let hawk = match &self.auth.hawk {
            HawkVerifier::None => "no Hawk".to_owned(),
            HawkVerifier::Local(path) => format!("Hawk against {}", path.display()),
            HawkVerifier::Taskcluster { root_url, .. } => {
                format!("Hawk verified by Taskcluster {root_url}")
            }
        };
        let anonymous = if self.auth.permissions.anonymous_public_download() {
            "anonymous public downloads"
        } else {
            "no anonymous downloads"
        };
        // The client id is no secret; its secret never appears.
        let browser = match &self.web.taskcluster_login {
            Some(client) => format!(", browser sign-in with Taskcluster (client {})", client.id),
            None => String::new(),
        };
        let jobs = &self.jobs;
        Summary {
            metadata,
            storage,
            auth: format!("{jwt}, {hawk}, {anonymous}{browser}"),
            jobs: [
                every("verify", jobs.verify_interval),
                every("replicate", jobs.replicate_interval),
                every("sweep", jobs.sweep_interval),
            ]
            .join(", "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::config;

    #[test]
    fn says_what_runs_and_never_a_secret() {
        let s = config(&["--data-dir", "/d"])
            .resolve()
            .expect("valid")
            .summary();
        assert_eq!(s.metadata, "SQLite /d/tooltool.sqlite3");
        assert_eq!(s.storage, "local directories local=/d/objects");
        assert_eq!(
            s.auth,
            "Bearer JWT (HS256, /d/jwt-secret), no Hawk, anonymous public downloads"
        );
        assert_eq!(
            s.jobs,
            "verify every 1m, replicate every 1m, sweep every 1h"
        );

        let s = config(&[
            "--database-url",
            "postgres://tt:hunter2-secret@db.internal:5433/tooltool?sslmode=require",
            "--s3-regions",
            "us-east-1:tt-east;eu:tt-eu@http://garage.eu:3900",
            "--s3-signing-region",
            "garage",
            "--s3-access-key-id",
            "AK",
            "--s3-secret-access-key",
            "hunter2-secret",
            "--jwt-secret",
            "hunter2-secret-0123456789",
            "--taskcluster-root-url",
            "https://tc.example.com",
            "--taskcluster-login-client-id",
            "tooltool-web",
            "--taskcluster-login-client-secret",
            "hunter2-oauth",
            "--allow-anonymous-public-download",
            "false",
            "--replicate-interval",
            "0",
            "--cloudfront-url",
            "d1.cloudfront.net",
            "--cloudfront-key-id",
            "K2JCJMDEHXQW5F",
            "--cloudfront-private-key",
            "-----BEGIN PRIVATE KEY-----secret",
        ])
        .resolve()
        .expect("valid")
        .summary();
        assert_eq!(
            s.metadata,
            "PostgreSQL tt@db.internal:5433/tooltool (pool of 16)"
        );
        assert_eq!(
            s.storage,
            "S3 us-east-1=tt-east at AWS, eu=tt-eu at http://garage.eu:3900 (endpoints signed for garage), downloads through CloudFront d1.cloudfront.net (key K2JCJMDEHXQW5F)"
        );
        assert_eq!(
            s.auth,
            "Bearer JWT (HS256, JWT_SECRET), Hawk verified by Taskcluster \
             https://tc.example.com, no anonymous downloads, browser sign-in with \
             Taskcluster (client tooltool-web)"
        );
        assert_eq!(s.jobs, "verify every 1m, replicate off, sweep every 1h");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
