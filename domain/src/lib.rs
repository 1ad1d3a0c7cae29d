//! The tooltool domain: content-addressed files, who may do what with them,
//! and the rules that decide whether an upload batch or an uploaded object is
//! acceptable.
//!
//! This crate is pure and synchronous: it performs no I/O, reads no clock and
//! knows nothing about serialization, so every rule here is tested by tables.

mod batch;
mod digest;
mod keys;
mod manage;
mod principal;
mod region;
mod scope;
mod search;
mod signed_url;
mod verification;
mod visibility;

pub use batch::{
    BatchError, DeclaredFile, ExistingFile, FileDisposition, MAX_FILENAME_BYTES,
    MAX_FILES_PER_BATCH, MAX_FILES_PER_PAGE, MAX_MESSAGE_BYTES, MAX_PAGE_LIMIT, batches_in_page,
    check_batch_shape, check_declared, check_filename, reconcile,
};
pub use digest::{Digest, InvalidDigest};
pub use keys::{ObjectKey, StagingKey};
pub use manage::PatchOp;
pub use principal::{MAX_PRINCIPAL_ID_BYTES, Permissions, Principal, check_principal_id};
pub use region::{InvalidRegion, RegionName, choose_region};
pub use scope::{Scope, ScopeSet};
pub use search::{MAX_SEARCH_TERM_BYTES, check_search_term};
pub use signed_url::{UrlRefusal, UrlSigner};
pub use verification::{ContentHasher, Observed, VerificationOutcome};
pub use visibility::{InvalidVisibility, Visibility};
