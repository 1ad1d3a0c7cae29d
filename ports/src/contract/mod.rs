//! Contract suites: what the port documents say, made executable. Every
//! adapter runs the suite of its port from its own tests with the macros
//! below, so all adapters of a port are held to the same behaviour.

pub mod blob;
pub mod faulty;
pub mod metadata;
pub mod transfers;

/// Expands to one `#[tokio::test]` per metadata-store contract case.
/// `$make` is an async expression yielding a fresh, empty store.
#[macro_export]
macro_rules! metadata_store_contract {
    ($make:expr) => {
        $crate::metadata_store_contract!(@cases $make;
            create_batch_records_files_and_slots,
            present_file_gets_no_slot,
            rejected_batch_stores_nothing,
            concurrent_batches_with_one_new_digest,
            batches_sharing_digests_in_crossed_orders_all_succeed,
            same_digest_twice_in_a_batch_gets_one_slot,
            search_is_literal_and_capped,
            upload_claims_are_exclusive_until_the_lease_ends,
            upload_leases_renew_and_never_start_by_renewal,
            complete_and_reject_settle_a_slot,
            abandoned_slots_are_dropped,
            replication_claims,
            patch_applies_operations_in_order,
            backlog_counts_pending_uploads_and_missing_regions,
            instance_regions_count_files_per_region,
            legacy_batches_import_once_with_their_ids,
            legacy_batches_renumber_when_their_id_is_taken,
            searches_page_with_cursors,
            file_uploads_list_every_batch_newest_first,
            search_pages_end_at_the_file_budget,
            batches_are_found_by_author_among_many,
            nonces_are_spent_once,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store = $make;
                $crate::contract::metadata::$case(std::sync::Arc::new(store)).await;
            }
        )*
    };
}

/// Expands to one `#[tokio::test]` per blob-store contract case. `$make`
/// is an async expression yielding a fresh store. Then either
/// `self_served` for stores whose every signed URL points at this server
/// (they offer [`crate::Receiving`] and [`crate::Serving`] for every
/// size), or `receives_above: <limit>` for stores that receive only
/// uploads above `limit` through this server (S3); where such a store's
/// server can hold multipart uploads of real keys, also
/// `blob_store_contract!(receives_in_parts: <store>, <part size>)`. Stores
/// with server-side copies also invoke
/// `blob_store_contract!(server_side_copy: <pair>)`.
#[macro_export]
macro_rules! blob_store_contract {
    (@common $make:expr) => {
        $crate::blob_store_contract!(@cases blob $make;
            put_head_get_delete_round_trip,
            promote_moves_only_the_inspected_version,
            list_staging_lists_only_old_staging_objects,
            large_objects_stream_in_bounded_chunks,
        );
    };
    ($make:expr, self_served) => {
        $crate::blob_store_contract!(@common $make);
        $crate::blob_store_contract!(@cases transfers $make;
            signed_get_urls_grant_exactly_what_they_say,
            open_serves_ranges,
        );
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn signed_put_urls_grant_exactly_what_they_say() {
            let store = std::sync::Arc::new($make);
            $crate::contract::transfers::signed_put_urls_grant_exactly_what_they_say(store, 6).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn receive_hashes_and_keeps_nothing_on_failure() {
            let store = std::sync::Arc::new($make);
            $crate::contract::transfers::receive_hashes_and_keeps_nothing_on_failure(
                store,
                b"received content".to_vec(),
            )
            .await;
        }
    };
    ($make:expr, receives_above: $limit:expr) => {
        $crate::blob_store_contract!(@common $make);
        $crate::blob_store_contract!(@cases transfers $make; serves_no_downloads);
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn signed_put_urls_grant_exactly_what_they_say() {
            let store = std::sync::Arc::new($make);
            $crate::contract::transfers::signed_put_urls_grant_exactly_what_they_say(store, $limit + 1)
                .await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn uploads_up_to_the_limit_go_to_the_store() {
            let store = std::sync::Arc::new($make);
            $crate::contract::transfers::uploads_up_to_the_limit_go_to_the_store(store, $limit).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn receive_in_one_part_hashes_and_keeps_nothing_on_failure() {
            let store = std::sync::Arc::new($make);
            $crate::contract::transfers::receive_hashes_and_keeps_nothing_on_failure(
                store,
                b"received content".to_vec(),
            )
            .await;
        }
    };
    // Stores that receive in parts of `$part` bytes (where the server can
    // store multipart uploads of real keys).
    (receives_in_parts: $make:expr, $part:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn receive_in_parts_hashes_and_keeps_nothing_on_failure() {
            let store = std::sync::Arc::new($make);
            $crate::contract::transfers::receive_hashes_and_keeps_nothing_on_failure(
                store,
                $crate::contract::patterned(2 * $part + 1000),
            )
            .await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn unfinished_writes_are_swept() {
            let store = std::sync::Arc::new($make);
            $crate::contract::transfers::unfinished_writes_are_swept(
                store,
                $crate::contract::patterned(2 * $part + 1000),
            )
            .await;
        }
    };
    // Stores with server-side copies: `$pair` makes two stores of one
    // copy domain.
    (server_side_copy: $pair:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn copy_from_copies_between_stores_of_one_domain() {
            let (a, b) = $pair;
            $crate::contract::blob::copy_from_copies_between_stores_of_one_domain(
                std::sync::Arc::new(a),
                std::sync::Arc::new(b),
            )
            .await;
        }
    };
    // One test per case of `contract::$module`.
    (@cases $module:ident $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store = $make;
                $crate::contract::$module::$case(std::sync::Arc::new(store)).await;
            }
        )*
    };
}

use chrono::{DateTime, Utc};
use tooltool_domain::{ContentHasher, Digest, StagingKey};

/// The digest of `bytes`.
pub fn digest_of(bytes: &[u8]) -> Digest {
    let mut h = ContentHasher::new();
    h.update(bytes);
    h.finish().digest
}

/// A staging key with a fixed slot id for `digest`.
pub fn staging(digest: &Digest, slot: &str) -> StagingKey {
    StagingKey::new(digest.clone(), format!("{slot:0>16}")).expect("valid slot")
}

/// `len` bytes of a pattern that repeats only every 251 bytes.
pub fn patterned(len: u64) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A fixed point in time the suites count from.
pub fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("valid time")
}
