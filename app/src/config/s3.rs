//! S3 storage (`S3_REGIONS` and the variables read with it): buckets, each
//! on AWS or an S3-compatible store's endpoint (S3_ENDPOINT, or its own),
//! the one signing region of such stores, the key pair, and the single-PUT
//! limit above which uploads pass through this server.

use super::storage::{Regions, S3Bucket, StorageArgs, parse_pairs};
use super::url::http_url;
use super::{ConfigError, Secret, err};
use tooltool_domain::RegionName;

const MIB: u64 = 1024 * 1024;
/// S3's largest single PUT (and CopyObject): the default limit.
pub const S3_SINGLE_PUT_MAX: u64 = 5 * 1024 * MIB;
/// The smallest limit: parts of larger objects are at most the limit, and
/// S3 (like Garage and MinIO) refuses parts under 5 MiB but the last.
const S3_SINGLE_PUT_MIN: u64 = 5 * MIB;

/// The most ranged requests one read keeps in flight: each holds a range
/// (2 MiB) in memory until its turn.
const MAX_READ_STREAMS: usize = 16;

/// A bucket name as S3 allows it.
fn bucket_name(bucket: &str) -> Result<String, ConfigError> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if ok {
        Ok(bucket.to_owned())
    } else {
        Err(err(
            "S3_REGIONS",
            format!("{bucket:?} is not a bucket name"),
        ))
    }
}

/// An endpoint URL (of `variable`), without credentials: the key pair has
/// its own, secret, variables, and URLs are printed at start-up.
fn endpoint(variable: &'static str, text: &str) -> Result<String, ConfigError> {
    let url = http_url(variable, text)?;
    if url.authority.contains('@') {
        return Err(err(
            variable,
            "an endpoint URL holds no credentials: set S3_REGIONS_ACCESS_KEY_ID and S3_REGIONS_SECRET_ACCESS_KEY",
        ));
    }
    Ok(url.text.to_owned())
}

/// One `region:bucket` or `region:bucket@endpoint` entry, the endpoint
/// defaulting to `default` (S3_ENDPOINT).
fn s3_bucket(
    region: RegionName,
    value: &str,
    default: Option<&String>,
) -> Result<S3Bucket, ConfigError> {
    let (bucket, endpoint, endpoint_variable) = match value.split_once('@') {
        Some((bucket, url)) => (
            bucket.trim(),
            Some(endpoint("S3_REGIONS", url)?),
            "S3_REGIONS",
        ),
        None => (value, default.cloned(), "S3_ENDPOINT"),
    };
    Ok(S3Bucket {
        region,
        bucket: bucket_name(bucket)?,
        endpoint,
        endpoint_variable,
    })
}

/// A key: its own variable, else the AWS tools' one.
fn key(
    own: &Option<Secret>,
    aws: &Option<Secret>,
    variable: &'static str,
    aws_variable: &str,
) -> Result<Secret, ConfigError> {
    own.as_ref()
        .or(aws.as_ref())
        .filter(|k| !k.0.is_empty())
        .cloned()
        .ok_or_else(|| {
            err(
                variable,
                format!("is required with S3_REGIONS (or set {aws_variable})"),
            )
        })
}

impl StorageArgs {
    /// The S3 regions `text` (`region:bucket;…`) names, with the settings
    /// read alongside.
    pub(super) fn s3_regions(&self, text: &str) -> Result<Regions, ConfigError> {
        let default_endpoint = self
            .s3_endpoint
            .as_deref()
            .map(|e| endpoint("S3_ENDPOINT", e))
            .transpose()?;
        let regions = parse_pairs("S3_REGIONS", text, "region:bucket")?
            .into_iter()
            .map(|(name, value)| s3_bucket(name, &value, default_endpoint.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let any_endpoint = regions.iter().any(|b| b.endpoint.is_some());
        let signing_region = match (&self.s3_signing_region, any_endpoint) {
            (None, _) => None,
            (Some(_), false) => {
                return Err(err(
                    "S3_SIGNING_REGION",
                    "is only for S3-compatible stores: set S3_ENDPOINT, or an endpoint in S3_REGIONS (on AWS each bucket is signed for its own region)",
                ));
            }
            (Some(r), true) => {
                let r = r.trim();
                let ok = !r.is_empty()
                    && r.len() <= 63
                    && r.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !ok {
                    return Err(err(
                        "S3_SIGNING_REGION",
                        format!("{r:?} is not a region name"),
                    ));
                }
                Some(r.to_owned())
            }
        };
        let single_put_limit = self.s3_single_put_limit.unwrap_or(S3_SINGLE_PUT_MAX);
        if !(S3_SINGLE_PUT_MIN..=S3_SINGLE_PUT_MAX).contains(&single_put_limit) {
            return Err(err(
                "S3_SINGLE_PUT_LIMIT",
                format!(
                    "must be {S3_SINGLE_PUT_MIN} (5 MiB) to {S3_SINGLE_PUT_MAX} (5 GiB) bytes, not {single_put_limit}: parts of larger objects are at most this large, and S3 refuses parts under 5 MiB"
                ),
            ));
        }
        if let Some(n) = self.s3_read_streams
            && !(1..=MAX_READ_STREAMS).contains(&n)
        {
            return Err(err(
                "S3_READ_STREAMS",
                format!("must be 1 to {MAX_READ_STREAMS}, not {n}"),
            ));
        }
        Ok(Regions::S3 {
            regions,
            signing_region,
            single_put_limit,
            read_streams: self.s3_read_streams,
            access_key: key(
                &self.s3_access_key_id,
                &self.aws_access_key_id,
                "S3_REGIONS_ACCESS_KEY_ID",
                "AWS_ACCESS_KEY_ID",
            )?,
            secret_key: key(
                &self.s3_secret_access_key,
                &self.aws_secret_access_key,
                "S3_REGIONS_SECRET_ACCESS_KEY",
                "AWS_SECRET_ACCESS_KEY",
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::Resolved;
    use super::super::tests::config;
    use super::*;

    fn s3(extra: &[&str]) -> Result<Resolved, ConfigError> {
        let mut args = vec![
            "--s3-regions",
            "us-east-1:tooltool-a;us-west-2:tooltool-b",
            "--s3-access-key-id",
            "AK",
            "--s3-secret-access-key",
            "SK",
        ];
        args.extend_from_slice(extra);
        config(&args).resolve()
    }

    fn buckets(r: Resolved) -> Vec<(String, String, Option<String>, &'static str)> {
        let Regions::S3 { regions, .. } = r.storage.regions else {
            panic!("s3 storage")
        };
        regions
            .into_iter()
            .map(|b| {
                (
                    b.region.as_str().to_owned(),
                    b.bucket,
                    b.endpoint,
                    b.endpoint_variable,
                )
            })
            .collect()
    }

    #[test]
    fn regions_are_on_aws_on_s3_endpoint_or_on_their_own_endpoint() {
        let own = |r: &str, b: &str, e: &str| {
            (r.to_owned(), b.to_owned(), Some(e.to_owned()), "S3_REGIONS")
        };
        assert_eq!(
            buckets(s3(&[]).expect("valid")),
            [
                ("us-east-1".into(), "tooltool-a".into(), None, "S3_ENDPOINT"),
                ("us-west-2".into(), "tooltool-b".into(), None, "S3_ENDPOINT"),
            ]
        );
        let shared = Some("http://garage:3900".to_owned());
        assert_eq!(
            buckets(s3(&["--s3-endpoint", "http://garage:3900/"]).expect("valid")),
            [
                (
                    "us-east-1".into(),
                    "tooltool-a".into(),
                    shared.clone(),
                    "S3_ENDPOINT"
                ),
                (
                    "us-west-2".into(),
                    "tooltool-b".into(),
                    shared.clone(),
                    "S3_ENDPOINT"
                ),
            ]
        );
        // A region on its own store; the others on S3_ENDPOINT (or AWS).
        let text = "eu:tooltool@https://s3.eu.example.com/ ; us: tooltool-us @ http://[::1]:3900;aws:tooltool-aws";
        for (extra, last) in [
            (&[][..], None),
            (&["--s3-endpoint", "http://garage:3900"][..], shared.clone()),
        ] {
            let mut args = vec!["--s3-regions", text, "--s3-access-key-id", "AK"];
            args.extend_from_slice(&["--s3-secret-access-key", "SK"]);
            args.extend_from_slice(extra);
            let r = config(&args).resolve().expect("valid");
            assert_eq!(
                buckets(r),
                [
                    own("eu", "tooltool", "https://s3.eu.example.com"),
                    own("us", "tooltool-us", "http://[::1]:3900"),
                    ("aws".into(), "tooltool-aws".into(), last, "S3_ENDPOINT"),
                ]
            );
        }
        for (regions, endpoint, refusal) in [
            (
                "eu:tooltool@",
                None,
                "S3_REGIONS: \"\" is not an http(s) URL",
            ),
            (
                "eu:tooltool@s3.example.com",
                None,
                "S3_REGIONS: \"s3.example.com\" is not",
            ),
            (
                "eu:Tooltool@http://h",
                None,
                "S3_REGIONS: \"Tooltool\" is not a bucket name",
            ),
            (
                "eu:@http://h",
                None,
                "S3_REGIONS: \"\" is not a bucket name",
            ),
            (
                "eu:b@x@http://h",
                None,
                "S3_REGIONS: \"x@http://h\" is not an http(s) URL",
            ),
            (
                "eu:tooltool@http://AK:SK@h",
                None,
                "S3_REGIONS: an endpoint URL holds no credentials",
            ),
            (
                "eu:tooltool",
                Some("http://AK:SK@h"),
                "S3_ENDPOINT: an endpoint URL holds no credentials",
            ),
        ] {
            let mut args = vec!["--s3-regions", regions, "--s3-access-key-id", "AK"];
            args.extend_from_slice(&["--s3-secret-access-key", "SK"]);
            if let Some(e) = endpoint {
                args.extend_from_slice(&["--s3-endpoint", e]);
            }
            let e = config(&args).resolve().expect_err("refused").to_string();
            assert!(e.starts_with(refusal), "{regions}: {e}");
        }
    }

    #[test]
    fn the_signing_region_is_for_s3_compatible_endpoints_only() {
        let r = s3(&[
            "--s3-endpoint",
            "http://127.0.0.1:3900",
            "--s3-signing-region",
            "garage",
        ])
        .expect("valid");
        let Regions::S3 { signing_region, .. } = r.storage.regions else {
            panic!("s3 storage")
        };
        assert_eq!(signing_region.as_deref(), Some("garage"));
        // An endpoint of a region's own is enough.
        let own = config(&[
            "--s3-regions",
            "eu:tooltool@http://127.0.0.1:3900",
            "--s3-access-key-id",
            "AK",
            "--s3-secret-access-key",
            "SK",
            "--s3-signing-region",
            "garage",
        ])
        .resolve()
        .expect("valid");
        let Regions::S3 { signing_region, .. } = own.storage.regions else {
            panic!("s3 storage")
        };
        assert_eq!(signing_region.as_deref(), Some("garage"));
        for extra in [
            &["--s3-signing-region", "garage"][..],
            &[
                "--s3-endpoint",
                "http://127.0.0.1:3900",
                "--s3-signing-region",
                "a/b",
            ][..],
        ] {
            let e = s3(extra).expect_err("refused").to_string();
            assert!(e.starts_with("S3_SIGNING_REGION: "), "{extra:?}: {e}");
        }
    }

    #[test]
    fn the_single_put_limit_is_s3s_unless_lowered_to_a_part_size() {
        let limit = |r: Resolved| match r.storage.regions {
            Regions::S3 {
                single_put_limit, ..
            } => single_put_limit,
            Regions::Local(_) => panic!("s3 storage"),
        };
        assert_eq!(limit(s3(&[]).expect("valid")), 5 * 1024 * MIB);
        for (given, expected) in [("5242880", 5 * MIB), ("5368709120", 5 * 1024 * MIB)] {
            let r = s3(&["--s3-single-put-limit", given]).expect("valid");
            assert_eq!(limit(r), expected, "{given}");
        }
        for bad in ["5242879", "5368709121", "0"] {
            let e = s3(&["--s3-single-put-limit", bad])
                .expect_err("refused")
                .to_string();
            assert!(e.starts_with("S3_SINGLE_PUT_LIMIT: must be"), "{bad}: {e}");
        }
        let e = config(&["--s3-read-streams", "2"])
            .resolve()
            .expect_err("local storage reads no ranges")
            .to_string();
        assert_eq!(e, "S3_READ_STREAMS: is only for S3_REGIONS");
        let streams = |r: Resolved| match r.storage.regions {
            Regions::S3 { read_streams, .. } => read_streams,
            Regions::Local(_) => panic!("s3 storage"),
        };
        assert_eq!(streams(s3(&[]).expect("valid")), None);
        for (given, ok) in [("1", true), ("16", true), ("0", false), ("17", false)] {
            let r = s3(&["--s3-read-streams", given]);
            match r {
                Ok(r) => {
                    assert!(ok, "{given}");
                    assert_eq!(streams(r), given.parse().ok());
                }
                Err(e) => {
                    assert!(!ok, "{given}");
                    assert_eq!(
                        e.to_string(),
                        format!("S3_READ_STREAMS: must be 1 to 16, not {given}")
                    );
                }
            }
        }
        let e = config(&["--s3-single-put-limit", "6000000"])
            .resolve()
            .expect_err("local storage has no such limit")
            .to_string();
        assert_eq!(e, "S3_SINGLE_PUT_LIMIT: is only for S3_REGIONS");
    }
}
