//! Where bytes live (local directories or S3 buckets, one per region) and
//! the lifetimes and limits of the URLs handed out for them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tooltool_domain::RegionName;

use super::cloudfront::CloudFront;
use super::{ConfigError, Secret, err};

/// The longest life of a signed URL: S3's limit for presigned URLs.
const MAX_URL_LIFETIME_SECS: u64 = 7 * 24 * 3600;
/// The shortest URL signing key accepted (the generated one has 64).
const MIN_URL_SECRET_BYTES: usize = 32;

#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "Storage")]
pub struct StorageArgs {
    /// Local storage regions, `name:/path;name:/path`; the first receives uploads
    /// unless a client asks for another. Default: one region `local` under DATA_DIR/objects.
    #[arg(long, env = "LOCAL_REGIONS")]
    pub local_regions: Option<String>,
    /// S3 storage, `region:bucket;region:bucket` (e.g. `us-east-1:tooltool-a;us-west-2:tooltool-b`);
    /// the first receives uploads unless a client asks for another. Instead of LOCAL_REGIONS.
    /// A region on its own S3-compatible store (one cluster per site) names its endpoint after
    /// the bucket: `eu:tooltool@https://s3.eu.example.com`.
    #[arg(long, env = "S3_REGIONS")]
    pub s3_regions: Option<String>,
    /// Endpoint of an S3-compatible store (Garage, MinIO, Ceph), addressed path-style: every
    /// region of S3_REGIONS that names no endpoint of its own is reached there.
    #[arg(long, env = "S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// Region every S3 request is signed for, instead of each bucket's region name: an
    /// S3-compatible store (Garage, MinIO, Ceph) has one (Garage's `s3_region`, often
    /// `garage` or `us-east-1`); the same for every endpoint. Only with an endpoint.
    #[arg(long, env = "S3_SIGNING_REGION")]
    pub s3_signing_region: Option<String>,
    /// Access key for S3 (else AWS_ACCESS_KEY_ID); the same on every endpoint.
    #[arg(long, env = "S3_REGIONS_ACCESS_KEY_ID", hide_env_values = true)]
    pub s3_access_key_id: Option<Secret>,
    /// Secret key for S3 (else AWS_SECRET_ACCESS_KEY).
    #[arg(long, env = "S3_REGIONS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<Secret>,
    /// The AWS tools' variable, read when S3_REGIONS_ACCESS_KEY_ID is unset.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide = true, hide_env_values = true)]
    pub aws_access_key_id: Option<Secret>,
    /// The AWS tools' variable, read when S3_REGIONS_SECRET_ACCESS_KEY is unset.
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        hide = true,
        hide_env_values = true
    )]
    pub aws_secret_access_key: Option<Secret>,
    /// Seconds an upload URL stays valid.
    #[arg(long, env = "UPLOAD_EXPIRES_IN", default_value_t = 60)]
    pub upload_expires_in: u64,
    /// Seconds a download URL stays valid (also read from the originals' DOWLOAD_EXPIRES_IN).
    #[arg(long, env = "DOWNLOAD_EXPIRES_IN")]
    pub download_expires_in: Option<u64>,
    #[arg(long, env = "DOWLOAD_EXPIRES_IN", hide = true)]
    pub dowload_expires_in: Option<u64>,
    /// Largest file a batch may declare, in bytes.
    #[arg(long, env = "MAX_FILE_SIZE", default_value_t = 50 * 1024 * 1024 * 1024)]
    pub max_file_size: u64,
    /// CloudFront distribution serving downloads, as its host name (e.g.
    /// `d111111abcdef8.cloudfront.net`, no scheme, no path): downloads answer a URL signed
    /// for it instead of the store's own. Needs CLOUDFRONT_KEY_ID and CLOUDFRONT_PRIVATE_KEY.
    #[arg(long, env = "CLOUDFRONT_URL")]
    pub cloudfront_url: Option<String>,
    /// Id of the CloudFront public key (key group) or key pair the private key belongs to.
    #[arg(long, env = "CLOUDFRONT_KEY_ID")]
    pub cloudfront_key_id: Option<String>,
    /// RSA private key (PEM) that signs CloudFront URLs: a file path, or the PEM text itself.
    #[arg(
        long,
        env = "CLOUDFRONT_PRIVATE_KEY",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub cloudfront_private_key: Option<Secret>,
    /// Largest object the S3 store takes in one PUT or copy, in bytes (S3: 5 GiB, the
    /// default; 5 MiB at least). Larger uploads get a URL of this server, which streams them
    /// into a multipart upload; larger copies go in parts.
    #[arg(long, env = "S3_SINGLE_PUT_LIMIT")]
    pub s3_single_put_limit: Option<u64>,
    /// Requests one read of a large S3 object keeps in flight (verification, replication), 1
    /// to 16; 1 reads each object in one request. Default: 4 on AWS (one connection carries
    /// less than the hashing takes), 1 on an S3-compatible store (it serves one stream at full
    /// speed, and ranges cost it CPU).
    #[arg(long, env = "S3_READ_STREAMS")]
    pub s3_read_streams: Option<usize>,
    /// Secret that signs the server's own storage URLs (local regions, and S3 uploads above
    /// S3_SINGLE_PUT_LIMIT); every process behind one PUBLIC_URL needs the same one.
    /// Default: created in DATA_DIR/url-secret.
    #[arg(long, env = "URL_SIGNING_SECRET", hide_env_values = true)]
    pub url_signing_secret: Option<Secret>,
}

/// Where bytes live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Regions {
    /// Region name → directory.
    Local(Vec<(RegionName, PathBuf)>),
    S3 {
        regions: Vec<S3Bucket>,
        /// `None`: each bucket is signed for its region's name (AWS);
        /// else buckets behind an endpoint are signed for this one.
        signing_region: Option<String>,
        /// The largest single PUT or copy; larger uploads pass through
        /// this server.
        single_put_limit: u64,
        /// `None`: each bucket's default (by whether it has an endpoint).
        read_streams: Option<usize>,
        access_key: Secret,
        secret_key: Secret,
    },
}

/// Where one region's bytes live on S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Bucket {
    pub region: RegionName,
    pub bucket: String,
    /// The S3-compatible store it is reached at; `None`: AWS.
    pub endpoint: Option<String>,
    /// The variable that named the endpoint (`S3_REGIONS` for a region's
    /// own, else `S3_ENDPOINT`), for start-up errors to point at.
    pub endpoint_variable: &'static str,
}

/// The resolved storage settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    pub regions: Regions,
    /// `None`: downloads are signed by each region's store.
    pub cloudfront: Option<CloudFront>,
    pub upload_expires: Duration,
    pub download_expires: Duration,
    pub max_file_size: u64,
    /// `None`: generated in DATA_DIR.
    pub url_signing_secret: Option<Secret>,
}

/// Parses `name:value;name:value` with region names, each once.
pub(super) fn parse_pairs(
    variable: &'static str,
    text: &str,
    shape: &str,
) -> Result<Vec<(RegionName, String)>, ConfigError> {
    let mut pairs: Vec<(RegionName, String)> = Vec::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part
            .split_once(':')
            .ok_or_else(|| err(variable, format!("{part:?} is not `{shape}`")))?;
        let name = RegionName::parse(name.trim()).map_err(|e| err(variable, e.to_string()))?;
        if value.trim().is_empty() {
            return Err(err(
                variable,
                format!("region {name} has nothing after ':'"),
            ));
        }
        if pairs.iter().any(|(n, _)| *n == name) {
            return Err(err(variable, format!("region {name} is listed twice")));
        }
        pairs.push((name, value.trim().to_owned()));
    }
    if pairs.is_empty() {
        return Err(err(
            variable,
            format!("no region given; use `{shape};{shape}`"),
        ));
    }
    Ok(pairs)
}

impl StorageArgs {
    /// Resolves the settings; the default region lives under `data_dir`.
    pub fn resolve(&self, data_dir: &Path) -> Result<Storage, ConfigError> {
        let regions = match (&self.s3_regions, &self.local_regions) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "S3_REGIONS",
                    "set either S3_REGIONS or LOCAL_REGIONS, not both",
                ));
            }
            (Some(text), None) => self.s3_regions(text)?,
            (None, Some(_)) | (None, None) if self.s3_single_put_limit.is_some() => {
                return Err(err("S3_SINGLE_PUT_LIMIT", "is only for S3_REGIONS"));
            }
            (None, Some(_)) | (None, None) if self.s3_read_streams.is_some() => {
                return Err(err("S3_READ_STREAMS", "is only for S3_REGIONS"));
            }
            (None, Some(text)) => Regions::Local(
                parse_pairs("LOCAL_REGIONS", text, "name:/path")?
                    .into_iter()
                    .map(|(name, path)| (name, PathBuf::from(path)))
                    .collect(),
            ),
            (None, None) => Regions::Local(vec![(
                RegionName::parse("local").map_err(|e| err("LOCAL_REGIONS", e.to_string()))?,
                data_dir.join("objects"),
            )]),
        };
        // S3 signs URLs for at most seven days; a longer life would also
        // overflow the clock arithmetic of expiry times.
        let lifetime = |variable: &'static str, secs: u64| {
            if (1..=MAX_URL_LIFETIME_SECS).contains(&secs) {
                Ok(secs)
            } else {
                Err(err(
                    variable,
                    format!("must be 1 to {MAX_URL_LIFETIME_SECS} seconds (7 days), not {secs}"),
                ))
            }
        };
        lifetime("UPLOAD_EXPIRES_IN", self.upload_expires_in)?;
        let download = lifetime(
            "DOWNLOAD_EXPIRES_IN",
            self.download_expires_in
                .or(self.dowload_expires_in)
                .unwrap_or(60),
        )?;
        // Sizes are stored as signed 64-bit integers.
        if self.max_file_size > i64::MAX as u64 {
            return Err(err(
                "MAX_FILE_SIZE",
                format!("must be at most {} bytes", i64::MAX),
            ));
        }
        if let Some(secret) = &self.url_signing_secret
            && secret.0.len() < MIN_URL_SECRET_BYTES
        {
            return Err(err(
                "URL_SIGNING_SECRET",
                format!("must be at least {MIN_URL_SECRET_BYTES} characters"),
            ));
        }
        Ok(Storage {
            cloudfront: self.cloudfront()?,
            regions,
            upload_expires: Duration::from_secs(self.upload_expires_in),
            download_expires: Duration::from_secs(download),
            max_file_size: self.max_file_size,
            url_signing_secret: self.url_signing_secret.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::config;
    use super::*;

    #[test]
    fn misspelt_download_variable_is_honoured_but_loses_to_the_right_one() {
        let r = config(&["--dowload-expires-in", "30"])
            .resolve()
            .expect("valid");
        assert_eq!(r.storage.download_expires, Duration::from_secs(30));
        let r = config(&["--dowload-expires-in", "30", "--download-expires-in", "90"])
            .resolve()
            .expect("valid");
        assert_eq!(r.storage.download_expires, Duration::from_secs(90));
    }
}
