//! S3 storage (`S3_REGIONS` and the variables read with it): buckets, the
//! endpoint of an S3-compatible store and its one signing region, the key
//! pair, and the single-PUT limit above which uploads pass through this
//! server.

use super::storage::{Regions, StorageArgs, parse_pairs};
use super::url::http_url;
use super::{ConfigError, Secret, err};
use tooltool_domain::RegionName;

const MIB: u64 = 1024 * 1024;
/// S3's largest single PUT (and CopyObject): the default limit.
pub const S3_SINGLE_PUT_MAX: u64 = 5 * 1024 * MIB;
/// The smallest limit: parts of larger objects are at most the limit, and
/// S3 (like Garage and MinIO) refuses parts under 5 MiB but the last.
const S3_SINGLE_PUT_MIN: u64 = 5 * MIB;

/// A bucket name as S3 allows it.
fn bucket(name: RegionName, bucket: String) -> Result<(RegionName, String), ConfigError> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if ok {
        Ok((name, bucket))
    } else {
        Err(err(
            "S3_REGIONS",
            format!("{bucket:?} is not a bucket name"),
        ))
    }
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
        let regions = parse_pairs("S3_REGIONS", text, "region:bucket")?
            .into_iter()
            .map(|(name, b)| bucket(name, b))
            .collect::<Result<Vec<_>, _>>()?;
        let endpoint = self
            .s3_endpoint
            .as_deref()
            .map(|e| http_url("S3_ENDPOINT", e).map(|u| u.text.to_owned()))
            .transpose()?;
        let signing_region = match (&self.s3_signing_region, &endpoint) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(err(
                    "S3_SIGNING_REGION",
                    "is only for S3-compatible stores: set S3_ENDPOINT too (on AWS each bucket is signed for its own region)",
                ));
            }
            (Some(r), Some(_)) => {
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
        Ok(Regions::S3 {
            regions,
            endpoint,
            signing_region,
            single_put_limit,
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
        let e = config(&["--s3-single-put-limit", "6000000"])
            .resolve()
            .expect_err("local storage has no such limit")
            .to_string();
        assert_eq!(e, "S3_SINGLE_PUT_LIMIT: is only for S3_REGIONS");
    }
}
