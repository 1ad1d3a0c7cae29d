//! Upload leases are renewed while the work goes on, however long it
//! takes, and no longer than that. Real time, short: the hash runs on a
//! blocking thread, which paused time would skip past.

use std::time::Duration;

use mockall::predicate::eq;
use tooltool_domain::Permissions;
use tooltool_ports::MockMetadataStore;

use super::{PREFIX, blob, info, now, service_with, slot};
use crate::service::{Settings, Verified};

#[tokio::test]
async fn a_slow_verification_renews_its_lease_until_it_settles() {
    let declared = slot(b"slow", 4);
    let mut east = blob("east");
    east.expect_head().returning(|_| Ok(Some(info(4))));
    // A store that takes 650 ms to send the object, with a 300 ms lease
    // renewed every 100 ms: about six renewals keep the slot meanwhile.
    east.expect_get().times(1).returning(|_| {
        Ok(Box::pin(futures_util::stream::once(async {
            tokio::time::sleep(Duration::from_millis(650)).await;
            Ok(bytes::Bytes::from_static(b"slow"))
        })))
    });
    east.expect_promote().times(1).returning(|_, _| Ok(()));
    let mut store = MockMetadataStore::new();
    let until = now() + chrono::Duration::milliseconds(300);
    store
        .expect_renew_upload()
        .with(eq(declared.key.clone()), eq(until))
        .times(4..=7)
        .returning(|_, _| Ok(()));
    store
        .expect_complete_upload()
        .times(1)
        .returning(|_, _| Ok(()));
    let mut settings = Settings::new(Permissions::new(PREFIX, true));
    settings.verify_lease = Duration::from_millis(300);
    let svc = service_with(store, vec![east], settings);
    assert_eq!(
        svc.verify_claimed(&declared).await.expect("verified"),
        Verified::Valid
    );
    // Nothing renews after the work ended (the mock's count would pass 7).
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// Slots the job claims together keep their leases while they wait for a
/// verification permit, not only once their own verification starts.
#[tokio::test]
async fn claimed_slots_waiting_for_a_permit_keep_their_leases() {
    let first = slot(b"one1", 4);
    let second = slot(b"two2", 4);
    let second_digest = second.key.digest().clone();
    let mut east = blob("east");
    east.expect_head().returning(|_| Ok(Some(info(4))));
    // Each read takes 400 ms; with one permit the second waits 400 ms first.
    east.expect_get().times(2).returning(move |key| {
        let content: &'static [u8] = match key {
            tooltool_domain::ObjectKey::Staging(k) if *k.digest() == second_digest => b"two2",
            _ => b"one1",
        };
        Ok(Box::pin(futures_util::stream::once(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            Ok(bytes::Bytes::from_static(content))
        })))
    });
    east.expect_promote().times(2).returning(|_, _| Ok(()));
    let mut store = MockMetadataStore::new();
    let due = vec![first.clone(), second.clone()];
    store
        .expect_claim_due_uploads()
        .times(1)
        .returning(move |_, _, _| Ok(due.clone()));
    store
        .expect_renew_upload()
        .with(eq(first.key.clone()), mockall::predicate::always())
        .times(2..=5)
        .returning(|_, _| Ok(()));
    // About 800 ms of renewals every 100 ms: waiting, then verifying.
    store
        .expect_renew_upload()
        .with(eq(second.key.clone()), mockall::predicate::always())
        .times(6..=9)
        .returning(|_, _| Ok(()));
    store
        .expect_complete_upload()
        .times(2)
        .returning(|_, _| Ok(()));
    let mut settings = Settings::new(Permissions::new(PREFIX, true));
    settings.verify_lease = Duration::from_millis(300);
    settings.verify_concurrency = 1;
    let svc = service_with(store, vec![east], settings);
    let results = svc.verify_pending(10).await.expect("run");
    assert!(
        results
            .iter()
            .all(|(_, r)| matches!(r, Ok(Verified::Valid))),
        "{results:?}"
    );
}
