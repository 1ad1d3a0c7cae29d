//! Connecting to S3: the account every region's bucket is reached with, the
//! SDK client (rustls on ring), and the SDK's errors as [`BlobError`]s.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::presigning::PresigningConfig;
use chrono::{DateTime, Utc};
use tooltool_ports::BlobError;

/// Where and as whom the stores connect: every region's bucket is reached
/// through one endpoint (AWS when `None`) with one key pair, which is what
/// lets buckets copy from each other server-side.
#[derive(Clone)]
pub struct Account {
    pub(crate) endpoint: Option<String>,
    pub(crate) access_key: String,
    pub(crate) secret_key: String,
    /// The region every request is signed for, whatever the bucket's
    /// tooltool region: an S3-compatible store has one signing region.
    pub(crate) signing_region: Option<String>,
    /// How long each attempt of a request waits for the store.
    pub(crate) timeouts: Timeouts,
    /// Requests a read of a large object keeps in flight (see
    /// [`Account::with_read_streams`]).
    pub(crate) read_streams: usize,
}

/// How long one attempt of a request waits for the store: a store that
/// accepts connections but never answers (partitioned, overloaded, a
/// cluster node stuck waiting on its peers) otherwise holds a
/// verification, and its permit, forever. Each attempt that runs out fails
/// as unreachable and is retried by the SDK, then by the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To open a connection (and finish TLS).
    pub connect: Duration,
    /// From the end of the request to the first byte of the answer: the
    /// store's thinking time, never a transfer's length (bodies stream
    /// after it).
    pub first_byte: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            first_byte: Duration::from_secs(30),
        }
    }
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("endpoint", &self.endpoint)
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

impl Account {
    pub fn new(endpoint: Option<&str>, access_key: &str, secret_key: &str) -> Self {
        Self {
            endpoint: endpoint.map(str::to_owned),
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            signing_region: None,
            timeouts: Timeouts::default(),
            read_streams: Self::default_read_streams(endpoint.is_some()),
        }
    }

    /// Streams per read: AWS S3 delivers far less per connection than
    /// SHA-512 hashes (tens of MB/s), so reads go in ranges, four at once;
    /// an S3-compatible store serves one stream as fast as it can serve at
    /// all (measured on Garage sharing 2 cores: verification at 0.89 of
    /// what it serves one curl in one stream, 0.64–0.71 in ranges, which
    /// cost Garage 3.4 CPU s per GiB against 2.4).
    fn default_read_streams(endpoint: bool) -> usize {
        if endpoint { 1 } else { 4 }
    }

    /// Reads large objects in `streams` ranged requests at once (1: one
    /// request for the whole object).
    #[must_use]
    pub fn with_read_streams(mut self, streams: usize) -> Self {
        self.read_streams = streams.max(1);
        self
    }

    /// Waits `timeouts` for the store instead of the defaults (tests).
    #[must_use]
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Signs every request for `region` instead of each bucket's tooltool
    /// region name (`S3_SIGNING_REGION`, for S3-compatible stores).
    #[must_use]
    pub fn with_signing_region(mut self, region: Option<&str>) -> Self {
        self.signing_region = region.map(str::to_owned);
        self
    }

    /// Buckets of one endpoint read with one key pair can copy from each
    /// other (across AWS regions too).
    pub(crate) fn copy_domain(&self) -> String {
        format!(
            "s3 {} {}",
            self.endpoint.as_deref().unwrap_or("aws"),
            self.access_key
        )
    }

    /// An S3 client signing for `aws_region` (or the account's signing
    /// region when it has one), path-style against the
    /// endpoint when there is one (S3-compatible stores), with rustls on
    /// ring.
    pub(crate) fn client(&self, aws_region: &str) -> Client {
        use aws_smithy_http_client::tls;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let credentials = aws_credential_types::Credentials::new(
            &self.access_key,
            &self.secret_key,
            None,
            None,
            "tooltool",
        );
        let mut config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(
                self.signing_region
                    .clone()
                    .unwrap_or_else(|| aws_region.to_owned()),
            ))
            .credentials_provider(credentials)
            .timeout_config(
                aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(self.timeouts.connect)
                    .read_timeout(self.timeouts.first_byte)
                    .build(),
            )
            // Checksums only where S3 requires them: many S3-compatible
            // stores reject the SDK's default CRC headers on multipart
            // uploads.
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            )
            .response_checksum_validation(
                aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
            )
            .http_client(http);
        if let Some(endpoint) = &self.endpoint {
            config = config.endpoint_url(endpoint).force_path_style(true);
        }
        Client::from_conf(config.build())
    }
}

type SdkError<E> = aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>;

/// What kind of failure an S3 request met, for callers that advise on it
/// (start-up names the setting to check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3FailureKind {
    /// 401/403: the key pair is wrong or lacks a permission.
    Denied,
    /// The bucket does not exist.
    NoSuchBucket,
    /// No HTTP answer: connection refused, DNS, TLS, timeout.
    Unreachable,
    Other,
}

/// One failed S3 request, as one line: the operation, the bucket, the
/// store's error code (or HTTP status) and its message. The SDK's own
/// errors print as nested Debug dumps; this is what logs and start-up show.
#[derive(Debug, thiserror::Error)]
#[error("S3 {operation} on bucket {bucket}: {detail}")]
pub struct S3Failure {
    pub operation: &'static str,
    pub bucket: String,
    pub kind: S3FailureKind,
    detail: String,
}

/// The innermost sentence of an error chain (for transport failures the
/// interesting part, e.g. `Connection refused (os error 111)`, is deepest).
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

impl S3Failure {
    /// A HEAD of the bucket answered 404 (HEAD answers carry no error code).
    pub(crate) fn no_such_bucket(bucket: &str) -> Self {
        Self {
            operation: "head bucket",
            bucket: bucket.to_owned(),
            kind: S3FailureKind::NoSuchBucket,
            detail: "the bucket does not exist (HTTP 404)".to_owned(),
        }
    }

    pub(crate) fn new<E>(operation: &'static str, bucket: &str, e: &SdkError<E>) -> Self
    where
        E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    {
        use aws_sdk_s3::error::SdkError as E_;
        let status = e.raw_response().map(|r| r.status().as_u16());
        let (kind, detail) = match e {
            E_::ServiceError(service) => {
                let err = service.err();
                let code = err.code();
                let kind = match (status, code) {
                    (_, Some("NoSuchBucket")) => S3FailureKind::NoSuchBucket,
                    (Some(401 | 403), _) => S3FailureKind::Denied,
                    _ => S3FailureKind::Other,
                };
                let status_text = status.map_or_else(String::new, |s| format!("HTTP {s}"));
                let detail = match (code, err.message()) {
                    (Some(code), Some(message)) => format!("{code}: {message} ({status_text})"),
                    (Some(code), None) => format!("{code} ({status_text})"),
                    (None, _) if kind == S3FailureKind::NoSuchBucket => {
                        format!("the bucket does not exist ({status_text})")
                    }
                    (None, _) if kind == S3FailureKind::Denied => {
                        format!("access denied ({status_text})")
                    }
                    (None, Some(message)) => format!("{message} ({status_text})"),
                    (None, None) => status_text,
                };
                (kind, detail)
            }
            E_::DispatchFailure(_) | E_::TimeoutError(_) => (
                S3FailureKind::Unreachable,
                format!("no answer from the store: {}", innermost(e)),
            ),
            _ => (S3FailureKind::Other, innermost(e)),
        };
        Self {
            operation,
            bucket: bucket.to_owned(),
            kind,
            detail,
        }
    }
}

/// The SDK's errors carry the HTTP status; 404 and 412 have meanings here,
/// the rest is a retryable failure of `operation`, kept as an [`S3Failure`].
pub(crate) fn sdk_error<E>(operation: &'static str, bucket: &str, e: SdkError<E>) -> BlobError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    match e.raw_response().map(|r| r.status().as_u16()) {
        Some(404) => BlobError::NotFound,
        Some(412) => BlobError::Changed,
        _ => BlobError::unavailable(S3Failure::new(operation, bucket, &e)),
    }
}

/// S3 checks presigned URLs against real time and the SDK signs with the
/// host clock, so the expiry becomes a duration from the host clock here.
pub(crate) fn expires_in(expires: DateTime<Utc>) -> Result<PresigningConfig, BlobError> {
    let secs = (expires - Utc::now()).num_seconds().max(1);
    PresigningConfig::expires_in(Duration::from_secs(u64::try_from(secs).unwrap_or(1)))
        .map_err(BlobError::unavailable)
}
