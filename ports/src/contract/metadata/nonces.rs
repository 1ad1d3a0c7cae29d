//! Spent nonces: once each, under concurrency, until forgotten.

use chrono::Duration;

use super::Store;
use crate::contract::t0;

/// A nonce is spent by exactly one of many concurrent calls, stays spent
/// until its expiry is swept, and only expired nonces are forgotten.
pub async fn nonces_are_spent_once(store: Store) {
    let expires = t0() + Duration::seconds(900);
    let spends = (0..16).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.spend_nonce([7; 32], expires).await })
    });
    let mut won = 0;
    for spend in spends {
        if spend.await.expect("task").expect("spend") {
            won += 1;
        }
    }
    assert_eq!(won, 1, "exactly one of 16 concurrent spends wins");
    assert!(
        store
            .spend_nonce([8; 32], t0() + Duration::seconds(10))
            .await
            .expect("spend"),
        "another key is fresh"
    );
    assert_eq!(
        store
            .forget_nonces(t0() + Duration::seconds(10))
            .await
            .expect("forget"),
        0,
        "nothing expired before 10 s (expiry is exclusive)"
    );
    assert_eq!(
        store
            .forget_nonces(t0() + Duration::seconds(11))
            .await
            .expect("forget"),
        1,
        "the nonce that expired at 10 s is forgotten"
    );
    assert!(
        !store.spend_nonce([7; 32], expires).await.expect("spend"),
        "an unexpired nonce is still spent after the sweep"
    );
    assert!(
        store
            .spend_nonce([8; 32], t0() + Duration::seconds(10))
            .await
            .expect("spend"),
        "a forgotten nonce can be spent again (its window refuses it anyway)"
    );
}
