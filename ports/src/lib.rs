//! The ports of the tooltool hexagon: what the application needs from the
//! outside world (driven ports: [`MetadataStore`], [`BlobStore`],
//! [`Authenticator`], [`Clock`]) and what it offers to the HTTP front
//! (the driving port [`ToolTool`]).
//!
//! Every trait documents what each implementation MUST do; the `contract`
//! feature turns those documents into suites every adapter runs.

mod api;
mod auth;
mod blob;
mod clock;
mod metadata;
mod metrics;

#[cfg(feature = "contract")]
pub mod contract;

pub use api::{
    ApiError, BatchRequest, CreatedBatchView, ErrorKind, HealthChecks, ToolTool, UploadProgress,
};
pub use auth::{AuthError, AuthRequest, Authenticator};
pub use blob::{
    BlobError, BlobStore, ByteRange, ByteStream, CopySource, ObjectInfo, Opened, SignedMethod,
};
pub use clock::Clock;
pub use metadata::{
    BatchRecord, CreatedBatch, FileRecord, ImportedBatch, MetadataError, MetadataStore, NewBatch,
    PendingUpload, UploadState,
};
pub use metrics::{Metrics, NoMetrics};

#[cfg(any(test, feature = "mocks"))]
pub use {
    auth::MockAuthenticator, blob::MockBlobStore, clock::MockClock, metadata::MockMetadataStore,
    metrics::MockMetrics,
};
