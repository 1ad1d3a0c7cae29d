//! Downloads, one digest (`download`) or many (`resolve`): existence,
//! then permission, then a region, then the signed URL.

use chrono::Duration;
use mockall::predicate::eq;
use tooltool_domain::{Principal, Visibility};
use tooltool_ports::{BlobError, ErrorKind, MAX_RESOLVE, MockMetadataStore, Resolution};

use super::{blob, digest, file, now, region, service, who};

#[tokio::test]
async fn download_checks_existence_then_permission_then_region() {
    let public = file(b"pub", Visibility::Public, &["east", "west"]);
    let internal = file(b"int", Visibility::Internal, &["east"]);
    let no_copy = file(b"none", Visibility::Public, &[]);
    let mut store = MockMetadataStore::new();
    for f in [public.clone(), internal.clone(), no_copy.clone()] {
        store
            .expect_get_file()
            .with(eq(f.digest.clone()))
            .returning(move |_| Ok(Some(f.clone())));
    }
    store.expect_get_file().returning(|_| Ok(None));
    let mut east = blob("east");
    east.expect_presign_get()
        .returning(|d, e| Ok(format!("east/sha512/{d}?{}", e.timestamp())));
    let mut west = blob("west");
    west.expect_presign_get()
        .returning(|d, _| Ok(format!("west/sha512/{d}")));
    let svc = service(store, vec![east, west]);
    let anon = Principal::anonymous();
    let kind = |r: Result<String, tooltool_ports::UseCaseError>| r.map_err(|e| e.kind());
    assert_eq!(
        kind(svc.download(&anon, &digest(b"absent"), None).await),
        Err(ErrorKind::NotFound)
    );
    assert_eq!(
        kind(svc.download(&anon, &no_copy.digest, None).await),
        Err(ErrorKind::NotFound)
    );
    let denied = svc
        .download(&anon, &internal.digest, None)
        .await
        .expect_err("denied");
    assert_eq!(denied.kind(), ErrorKind::Denied);
    assert_eq!(denied.message(), crate::service::FORBIDDEN_DOWNLOAD);
    let url = svc
        .download(&who(&["download/internal"]), &internal.digest, None)
        .await
        .expect("allowed");
    assert_eq!(
        url,
        format!(
            "east/sha512/{}?{}",
            internal.digest,
            (now() + Duration::seconds(60)).timestamp()
        )
    );
    let url = svc
        .download(&anon, &public.digest, Some(region("west")))
        .await
        .expect("allowed");
    assert!(url.starts_with("west/"), "{url}");
    let url = svc
        .download(&anon, &public.digest, Some(region("north")))
        .await
        .expect("allowed");
    assert!(url.starts_with("east/"), "{url}");
}

/// A store knowing `public` (east, west), `internal` (east) and `pending`
/// (declared, no copy); east's URLs carry their expiry, west's do not.
fn three_files_store() -> (MockMetadataStore, [tooltool_ports::FileRecord; 3]) {
    let public = file(b"pub", Visibility::Public, &["east", "west"]);
    let internal = file(b"int", Visibility::Internal, &["east"]);
    let pending = file(b"none", Visibility::Public, &[]);
    let mut store = MockMetadataStore::new();
    for f in [public.clone(), internal.clone(), pending.clone()] {
        store
            .expect_get_file()
            .with(eq(f.digest.clone()))
            .returning(move |_| Ok(Some(f.clone())));
    }
    store.expect_get_file().returning(|_| Ok(None));
    (store, [public, internal, pending])
}

fn outcome(r: &Resolution) -> (Option<(u64, Visibility)>, Result<&str, ErrorKind>) {
    (r.file, r.url.as_deref().map_err(|e| e.kind()))
}

#[tokio::test]
async fn resolve_answers_each_digest_in_order_as_download_would() {
    let (store, [public, internal, pending]) = three_files_store();
    let mut east = blob("east");
    east.expect_presign_get()
        .returning(|d, _| Ok(format!("east/{d}")));
    let mut west = blob("west");
    west.expect_presign_get()
        .returning(|d, _| Ok(format!("west/{d}")));
    let svc = service(store, vec![east, west]);
    let absent = digest(b"absent");
    let asked = vec![
        internal.digest.clone(),
        absent.clone(),
        public.digest.clone(),
        pending.digest.clone(),
        public.digest.clone(),
    ];
    let anon = svc
        .resolve(&Principal::anonymous(), asked.clone(), Some(region("west")))
        .await
        .expect("resolved");
    assert_eq!(anon.expires_in_secs, 60);
    let got: Vec<_> = anon.files.iter().map(outcome).collect();
    let west_url = format!("west/{}", public.digest);
    assert_eq!(
        got,
        vec![
            (Some((3, Visibility::Internal)), Err(ErrorKind::Denied)),
            (None, Err(ErrorKind::NotFound)),
            (Some((3, Visibility::Public)), Ok(west_url.as_str())),
            (Some((4, Visibility::Public)), Err(ErrorKind::NotYet)),
            (Some((3, Visibility::Public)), Ok(west_url.as_str())),
        ]
    );
    let digests: Vec<_> = anon.files.iter().map(|r| r.digest.clone()).collect();
    assert_eq!(digests, asked);
    // The caller's scopes decide, digest by digest.
    let reader = svc
        .resolve(
            &who(&["download/internal"]),
            vec![internal.digest.clone()],
            None,
        )
        .await
        .expect("resolved");
    let east_url = format!("east/{}", internal.digest);
    assert_eq!(
        outcome(&reader.files[0]),
        (Some((3, Visibility::Internal)), Ok(east_url.as_str()))
    );
}

#[tokio::test]
async fn resolve_refuses_too_many_and_fails_whole_on_a_fault() {
    let svc = service(MockMetadataStore::new(), vec![blob("east")]);
    let e = svc
        .resolve(
            &Principal::anonymous(),
            vec![digest(b"x"); MAX_RESOLVE + 1],
            None,
        )
        .await
        .expect_err("too many");
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(e.message().contains("1024"), "{}", e.message());

    // A signing failure is the server's, not the digest's: the caller
    // retries the whole request rather than reading a refusal.
    let (store, [public, ..]) = three_files_store();
    let mut east = blob("east");
    east.expect_presign_get()
        .returning(|_, _| Err(BlobError::unavailable("signing key unreadable")));
    let mut west = blob("west");
    west.expect_presign_get()
        .returning(|_, _| Err(BlobError::unavailable("signing key unreadable")));
    let svc = service(store, vec![east, west]);
    let e = svc
        .resolve(&Principal::anonymous(), vec![public.digest.clone()], None)
        .await
        .expect_err("a fault");
    assert_eq!(e.kind(), ErrorKind::Unavailable);

    let mut store = MockMetadataStore::new();
    store.expect_get_file().returning(|_| {
        Err(tooltool_ports::MetadataError::unavailable(
            "connection refused",
        ))
    });
    let svc = service(store, vec![blob("east")]);
    let e = svc
        .resolve(&Principal::anonymous(), vec![digest(b"x")], None)
        .await
        .expect_err("a fault");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
}
