//! Upload slots: claims and leases, settling, abandonment.

use super::*;

pub async fn upload_claims_are_exclusive_until_the_lease_ends(store: Store) {
    let created = store
        .create_batch(batch(
            "claims",
            vec![
                file("c", "claimed", Visibility::Public),
                file("d", "due", Visibility::Public),
            ],
        ))
        .await
        .expect("batch");
    let c = &created.uploads[0].key;
    let lease = t0() + Duration::seconds(30);
    assert!(store.claim_upload(c, t0(), lease).await.expect("claim"));
    assert!(
        !store
            .claim_upload(c, t0() + Duration::seconds(29), lease)
            .await
            .expect("claim")
    );
    let due = store.claim_due_uploads(t0(), lease, 10).await.expect("due");
    assert_eq!(due.len(), 1, "the claimed slot is not due");
    assert_ne!(&due[0].key, c);
    assert!(
        store
            .claim_due_uploads(t0(), lease, 10)
            .await
            .expect("due")
            .is_empty()
    );
    // A holder that died: its lease runs out and the slot is claimable again.
    assert!(
        store
            .claim_upload(
                c,
                t0() + Duration::seconds(30),
                lease + Duration::seconds(30)
            )
            .await
            .expect("claim")
    );
    store.release_upload(c).await.expect("release");
    assert!(
        store
            .claim_upload(c, t0(), lease)
            .await
            .expect("claim after release")
    );
    let gone = staging(&digest_of(b"never declared"), "nope");
    assert!(!store.claim_upload(&gone, t0(), lease).await.expect("claim"));
    store
        .renew_upload(&gone, lease)
        .await
        .expect("renewing a slot that is gone");
}

/// A holder renews its lease while it works: nobody else can claim the
/// slot until the renewed end; renewing an unheld slot takes no lease.
pub async fn upload_leases_renew_and_never_start_by_renewal(store: Store) {
    let created = store
        .create_batch(batch(
            "renew",
            vec![
                file("r", "renewed", Visibility::Public),
                file("u", "unheld", Visibility::Public),
            ],
        ))
        .await
        .expect("batch");
    let (held, unheld) = (&created.uploads[0].key, &created.uploads[1].key);
    let at = |s: i64| t0() + Duration::seconds(s);
    assert!(
        store
            .claim_upload(held, at(0), at(30))
            .await
            .expect("claim")
    );
    store.renew_upload(held, at(90)).await.expect("renew");
    assert!(
        !store
            .claim_upload(held, at(60), at(120))
            .await
            .expect("claim"),
        "renewed lease still held at 60 s"
    );
    assert!(
        store
            .claim_upload(held, at(90), at(120))
            .await
            .expect("claim"),
        "the renewed lease ends at 90 s"
    );
    store.renew_upload(unheld, at(600)).await.expect("renew");
    let due = store
        .claim_due_uploads(at(1), at(31), 10)
        .await
        .expect("due");
    assert_eq!(
        due.iter().map(|p| &p.key).collect::<Vec<_>>(),
        [unheld],
        "renewal took no lease on the unheld slot"
    );
}

pub async fn complete_and_reject_settle_a_slot(store: Store) {
    let created = store
        .create_batch(batch(
            "settle",
            vec![file("s", "settled", Visibility::Public)],
        ))
        .await
        .expect("batch");
    let slot = created.uploads[0].clone();
    let d = slot.key.digest().clone();
    store
        .reject_upload(&slot.key, "wrong bytes".into())
        .await
        .expect("reject");
    let state = store.upload_state(&d).await.expect("state");
    assert!(state.pending.is_empty());
    assert_eq!(state.rejection.as_deref(), Some("wrong bytes"));
    assert!(!state.file.expect("file stays").has_instances());
    store
        .reject_upload(&slot.key, "again".into())
        .await
        .expect("idempotent");
    // A new slot clears the rejection.
    let again = store
        .create_batch(batch(
            "retry",
            vec![file("s", "settled", Visibility::Public)],
        ))
        .await
        .expect("batch");
    let state = store.upload_state(&d).await.expect("state");
    assert_eq!(state.rejection, None);
    assert_eq!(state.pending, again.uploads);
    store
        .complete_upload(&again.uploads[0].key, 7)
        .await
        .expect("complete");
    store
        .complete_upload(&again.uploads[0].key, 7)
        .await
        .expect("idempotent");
    let state = store.upload_state(&d).await.expect("state");
    assert!(state.pending.is_empty());
    let f = state.file.expect("file");
    assert_eq!(f.instances, vec![region("east")]);
    assert_eq!(f.size, 7);
}

pub async fn abandoned_slots_are_dropped(store: Store) {
    let mut early = batch("early", vec![file("e", "early", Visibility::Public)]);
    early.slot_expires = t0();
    let early = store.create_batch(early).await.expect("batch");
    let late = store
        .create_batch(batch("late", vec![file("l", "late", Visibility::Public)]))
        .await
        .expect("batch");
    let dropped = store
        .drop_abandoned_uploads(t0() + Duration::seconds(1))
        .await
        .expect("drop");
    assert_eq!(dropped, early.uploads);
    assert_eq!(
        store
            .pending_upload(&early.uploads[0].key)
            .await
            .expect("read"),
        None
    );
    assert!(
        store
            .pending_upload(&late.uploads[0].key)
            .await
            .expect("read")
            .is_some()
    );
}
