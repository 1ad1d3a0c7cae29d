//! Recovering a promotion whose recording was interrupted: the verify job
//! finds the slot's staging object gone and the final object in place.

use chrono::Duration;
use mockall::predicate::eq;
use tooltool_domain::{ObjectKey, Visibility};
use tooltool_ports::{MockBlobStore, MockMetadataStore, PendingUpload};

use super::{blob, body, file, info, now, service, slot};
use crate::service::Verified;

/// A slot whose URL has expired, whose staging object is gone, and whose
/// final object is in its region: the slot was promoted and the process
/// died before recording it (or another slot's promotion put it there).
fn promoted_but_unrecorded(content: &'static [u8]) -> (PendingUpload, MockBlobStore) {
    let mut declared = slot(content, content.len() as u64);
    declared.expires = now() - Duration::seconds(1);
    let mut east = blob("east");
    east.expect_head().returning(move |key| match key {
        ObjectKey::Staging(_) => Ok(None),
        ObjectKey::File(_) => Ok(Some(info(content.len() as u64))),
    });
    (declared, east)
}

/// A store that knows the file, with copies in `instances`.
fn store_knowing(instances: &'static [&'static str]) -> MockMetadataStore {
    let mut store = MockMetadataStore::new();
    store
        .expect_get_file()
        .returning(move |_| Ok(Some(file(b"promoted", Visibility::Public, instances))));
    store
}

#[tokio::test]
async fn an_interrupted_promotion_is_recorded_after_hashing_the_final_object() {
    let (declared, mut east) = promoted_but_unrecorded(b"promoted");
    east.expect_get()
        .withf(|key| matches!(key, ObjectKey::File(_)))
        .times(1)
        .returning(|_| Ok(body(b"promoted")));
    let mut store = store_knowing(&[]);
    store
        .expect_complete_upload()
        .with(eq(declared.key.clone()), eq(8))
        .times(1)
        .returning(|_, _| Ok(()));
    store.expect_release_upload().never();
    let svc = service(store, vec![east]);
    assert_eq!(
        svc.verify_claimed(&declared).await.expect("recovered"),
        Verified::Valid
    );
}

#[tokio::test]
async fn a_final_object_an_instance_vouches_for_is_not_read_again() {
    let (declared, mut east) = promoted_but_unrecorded(b"promoted");
    east.expect_get().never();
    let mut store = store_knowing(&["east"]);
    store
        .expect_complete_upload()
        .times(1)
        .returning(|_, _| Ok(()));
    let svc = service(store, vec![east]);
    assert_eq!(
        svc.verify_claimed(&declared).await.expect("recovered"),
        Verified::Valid
    );
}

#[tokio::test]
async fn a_final_object_with_other_bytes_is_never_recorded() {
    let (declared, mut east) = promoted_but_unrecorded(b"promoted");
    east.expect_get().returning(|_| Ok(body(b"PROMOTED")));
    let mut store = store_knowing(&[]);
    store.expect_complete_upload().never();
    store.expect_release_upload().times(1).returning(|_| Ok(()));
    let svc = service(store, vec![east]);
    assert_eq!(
        svc.verify_claimed(&declared).await.expect("no error"),
        Verified::NotYet
    );
}

#[tokio::test]
async fn a_slot_whose_url_is_still_valid_is_left_to_its_uploader() {
    // The staging object appears only when its PUT ends: until the URL
    // expires, a missing one means "not yet", even beside a final object.
    let declared = slot(b"uploading", 9);
    let mut east = blob("east");
    east.expect_head()
        .withf(|key| matches!(key, ObjectKey::Staging(_)))
        .times(1)
        .returning(|_| Ok(None));
    let mut store = MockMetadataStore::new();
    store.expect_get_file().never();
    store.expect_complete_upload().never();
    store.expect_release_upload().times(1).returning(|_| Ok(()));
    let svc = service(store, vec![east]);
    assert_eq!(
        svc.verify_claimed(&declared).await.expect("no error"),
        Verified::NotYet
    );
}
