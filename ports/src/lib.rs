//! The ports of the tooltool hexagon: what the application needs from the
//! outside world (driven ports: [`MetadataStore`], [`BlobStore`] with its
//! optional [`Receiving`] and [`Serving`] capabilities, [`Authenticator`], [`Clock`],
//! [`Metrics`]) and what it offers to its fronts (the driving port
//! [`ToolTool`], whose errors are [`UseCaseError`]s).
//!
//! Every trait documents what each implementation MUST do; the `contract`
//! feature turns those documents into suites every adapter runs.

mod api;
mod auth;
mod blob;
mod clock;
mod error;
mod metadata;
mod metrics;

#[cfg(feature = "contract")]
pub mod contract;

pub use api::{
    BatchRequest, CreatedBatchView, HealthChecks, MAX_RESOLVE, Resolution, Resolutions, ToolTool,
    UploadProgress,
};
pub use auth::{AuthError, AuthRequest, Authenticator, SignInAuthority};
pub use blob::{
    BlobError, BlobStore, ByteRange, ByteStream, CopySource, ObjectInfo, Opened, Receiving, Serving,
};
pub use clock::{Chance, Clock};
pub use error::{
    Cause, Chain, Context, ErrorKind, INTERNAL_MESSAGE, LOW_SPACE_BYTES, OUT_OF_SPACE_MESSAGE,
    UNAVAILABLE_MESSAGE, URL_NOT_FOUND_MESSAGE, UseCaseError, is_low_on_space, is_out_of_space,
    low_space_at,
};
pub use metadata::{
    BatchRecord, CacheStats, CreatedBatch, FileChanges, FileRecord, FileUpload, Imported,
    ImportedBatch, MetadataError, MetadataStore, NewBatch, PendingUpload, UploadState, WhenTaken,
};
pub use metrics::{Metrics, NoMetrics};

#[cfg(any(test, feature = "mocks"))]
pub use {
    api::MockToolTool, auth::MockAuthenticator, auth::MockSignInAuthority, blob::MockBlobStore,
    blob::MockReceiving, blob::MockServing, clock::MockChance, clock::MockClock,
    metadata::MockMetadataStore, metrics::MockMetrics,
};
