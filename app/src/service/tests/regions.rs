//! Region choice: `?region=` wins when it can; otherwise downloads spread
//! over the configured regions holding a copy, uploads over the configured
//! regions, through the chance port.

use std::collections::BTreeMap;
use std::sync::Arc;

use mockall::predicate::eq;
use tooltool_domain::{Principal, Visibility};
use tooltool_ports::{BatchRecord, CreatedBatch, MockMetadataStore, PendingUpload};

use super::{blob, declared, digest, file, pick, region, request, service, who};

fn serving(names: &[&str]) -> Vec<tooltool_ports::MockBlobStore> {
    names
        .iter()
        .map(|name| {
            let mut b = blob(name);
            let name = (*name).to_owned();
            b.expect_presign_get()
                .returning(move |d, _| Ok(format!("{name}/sha512/{d}")));
            b
        })
        .collect()
}

/// A store that knows one file with copies in `instances`.
fn store_with(instances: &'static [&'static str]) -> MockMetadataStore {
    let f = file(b"spread", Visibility::Public, instances);
    let mut store = MockMetadataStore::new();
    store
        .expect_get_file()
        .with(eq(f.digest.clone()))
        .returning(move |_| Ok(Some(f.clone())));
    store
}

fn served_from(url: &str) -> &str {
    url.split('/').next().unwrap_or_default()
}

/// Over 1 000 downloads with the real random source, every configured
/// region holding a copy serves a fair share, and a region without a copy
/// (north) or one this process lacks (attic) never does.
#[tokio::test]
async fn downloads_spread_over_the_regions_holding_a_copy() {
    let svc = service(
        store_with(&["east", "west", "south", "attic"]),
        serving(&["east", "west", "south", "north"]),
    )
    .with_chance(Arc::new(crate::ThreadChance));
    let mut counts = BTreeMap::new();
    for _ in 0..1000 {
        let url = svc
            .download(&Principal::anonymous(), &digest(b"spread"), None)
            .await
            .expect("served");
        *counts.entry(served_from(&url).to_owned()).or_insert(0) += 1;
    }
    assert_eq!(
        counts.keys().map(String::as_str).collect::<Vec<_>>(),
        ["east", "south", "west"],
        "{counts:?}"
    );
    // Binomial(1000, 1/3): mean 333, standard deviation 15; 250..420 is
    // more than five deviations either way.
    for (name, n) in &counts {
        assert!(
            (250..420).contains(n),
            "{name} served {n} of 1000: {counts:?}"
        );
    }
}

/// The chance port is asked over the candidates only when the preference
/// does not decide, and its answer is the region used.
#[tokio::test]
async fn the_preference_wins_when_it_holds_a_copy_else_chance_decides() {
    for (preferred, picked, expected) in [
        (Some("west"), 0, "west"),
        (Some("east"), 1, "east"),
        (Some("north"), 1, "west"),
        (None, 0, "east"),
        (None, 1, "west"),
    ] {
        let svc = service(
            store_with(&["east", "west"]),
            serving(&["east", "west", "north"]),
        )
        .with_chance(pick(picked));
        let url = svc
            .download(
                &Principal::anonymous(),
                &digest(b"spread"),
                preferred.map(region),
            )
            .await
            .expect("served");
        assert_eq!(served_from(&url), expected, "{preferred:?} picked {picked}");
    }
}

/// Uploads go to the requested region when it is configured, else to one
/// of the configured regions chosen by chance.
#[tokio::test]
async fn uploads_go_to_the_requested_region_else_to_a_random_one() {
    for (preferred, picked, expected) in [
        (Some("west"), 0, "west"),
        (Some("north"), 1, "west"),
        (None, 0, "east"),
        (None, 1, "west"),
    ] {
        let mut store = MockMetadataStore::new();
        store.expect_create_batch().times(1).returning(move |b| {
            assert_eq!(b.region.as_str(), expected, "{preferred:?} picked {picked}");
            Ok(CreatedBatch {
                uploads: vec![PendingUpload {
                    key: b.slots[0].clone(),
                    size: b.files[0].size,
                    region: b.region.clone(),
                    expires: b.slot_expires,
                }],
                batch: BatchRecord {
                    id: 1,
                    uploaded: b.uploaded,
                    author: b.author,
                    message: b.message,
                    files: vec![],
                },
            })
        });
        let regions = ["east", "west"].map(|name| {
            let mut b = blob(name);
            b.expect_presign_put()
                .returning(move |k, _, _| Ok(format!("{name}/{k}")));
            b
        });
        let svc = service(store, regions.into()).with_chance(pick(picked));
        let created = svc
            .create_batch(
                &who(&["upload/public"]),
                request(vec![declared("f", b"f", Visibility::Public)]),
                preferred.map(region),
            )
            .await
            .expect("created");
        let url = &created.put_urls[&digest(b"f")];
        assert!(url.starts_with(&format!("{expected}/")), "{url}");
    }
}
