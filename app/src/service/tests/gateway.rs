//! The server's storage routes: the store's own signature check decides
//! which slot or file a URL grants, stores that receive or serve nothing
//! here answer "not found", and a received upload is settled before the
//! PUT is answered.

use std::sync::Arc;

use mockall::predicate::eq;
use tooltool_domain::ContentHasher;
use tooltool_ports::{
    BlobError, ByteRange, ErrorKind, MockBlobStore, MockMetadataStore, MockReceiving, MockServing,
    Opened, Receiving, Serving,
};

use super::{blob, body, digest, info, region, service, slot};

/// `east`, receiving uploads through `receiving`.
fn receiving(receiving: MockReceiving) -> MockBlobStore {
    let receiving: Arc<dyn Receiving> = Arc::new(receiving);
    let mut east = blob("east");
    east.expect_receiving()
        .returning(move || Some(Arc::clone(&receiving)));
    east.expect_serving().never();
    east
}

/// `east`, serving downloads through `serving`.
fn serving(serving: MockServing) -> MockBlobStore {
    let serving: Arc<dyn Serving> = Arc::new(serving);
    let mut east = blob("east");
    east.expect_serving()
        .returning(move || Some(Arc::clone(&serving)));
    east.expect_receiving().never();
    east
}

#[tokio::test]
async fn regions_and_stores_that_serve_nothing_are_not_found() {
    let mut store = MockMetadataStore::new();
    store.expect_pending_upload().never();
    let mut s3 = blob("east");
    s3.expect_receiving().returning(|| None);
    s3.expect_serving().returning(|| None);
    let svc = service(store, vec![s3]);
    for r in ["east", "west"] {
        let e = svc
            .receive_blob(&region(r), "pending/x", "", body(b""))
            .await
            .expect_err("nothing served");
        assert_eq!(e.kind(), ErrorKind::NotFound, "{r}");
        let e = svc
            .serve_blob(&region(r), "sha512/x", "", ByteRange::Full)
            .await
            .expect_err("nothing served");
        assert_eq!(e.kind(), ErrorKind::NotFound, "{r}");
    }
}

#[tokio::test]
async fn a_url_the_store_did_not_sign_is_denied_before_anything_else() {
    let mut receiver = MockReceiving::new();
    receiver
        .expect_authorize_put()
        .returning(|_, _, _| Err(BlobError::Forbidden("this signed URL has expired".into())));
    receiver.expect_receive().never();
    let mut store = MockMetadataStore::new();
    store.expect_pending_upload().never();
    store.expect_claim_upload().never();
    let svc = service(store, vec![receiving(receiver)]);
    let e = svc
        .receive_blob(&region("east"), "pending/x/y", "expires=1", body(b"x"))
        .await
        .expect_err("denied");
    assert_eq!(
        (e.kind(), e.message()),
        (ErrorKind::Denied, "this signed URL has expired")
    );
}

/// A closed slot, a slot being uploaded, too many bytes, and content that
/// verifies: what each PUT is answered, and what it records.
#[tokio::test]
async fn uploads_are_received_into_open_slots_and_settled() {
    let declared = slot(b"good", 4);
    let key = declared.key.clone();
    let text = key.to_string();
    let mut receiver = MockReceiving::new();
    let granted = key.clone();
    receiver
        .expect_authorize_put()
        .with(
            eq(text.clone()),
            eq("q".to_owned()),
            mockall::predicate::always(),
        )
        .returning(move |_, _, _| Ok(granted.clone()));
    let mut attempt = 0;
    receiver
        .expect_receive()
        .times(2)
        .returning(move |_, limit, _| {
            assert_eq!(limit, 4, "no more than the declared size is accepted");
            attempt += 1;
            if attempt == 1 {
                return Err(BlobError::TooLarge { limit });
            }
            let mut h = ContentHasher::new();
            h.update(b"good");
            Ok((h.finish(), info(4)))
        });
    let mut store = MockMetadataStore::new();
    let mut seen = 0;
    let open = declared.clone();
    store.expect_pending_upload().returning(move |_| {
        seen += 1;
        // Closed, then open four times.
        Ok((seen > 1).then(|| open.clone()))
    });
    let mut claims = 0;
    store.expect_claim_upload().returning(move |_, _, _| {
        claims += 1;
        Ok(claims > 1) // another transfer holds it the first time
    });
    store
        .expect_reject_upload()
        .withf(|_, reason| reason.contains("expected 4 bytes, received more"))
        .times(1)
        .returning(|_, _| Ok(()));
    store
        .expect_complete_upload()
        .with(eq(key.clone()), eq(4))
        .times(1)
        .returning(|_, _| Ok(()));
    let mut east = receiving(receiver);
    east.expect_promote().times(1).returning(|_, _| Ok(()));
    let svc = service(store, vec![east]);
    let east = region("east");
    let put = || svc.receive_blob(&east, &text, "q", body(b"good"));
    let kinds = [
        put().await.map_err(|e| e.kind()),
        put().await.map_err(|e| e.kind()),
        put().await.map_err(|e| e.kind()),
        put().await.map_err(|e| e.kind()),
    ];
    assert_eq!(
        kinds,
        [
            Err(ErrorKind::Closed),
            Err(ErrorKind::NotYet),
            Err(ErrorKind::Invalid),
            Ok(())
        ]
    );
}

#[tokio::test]
async fn downloads_open_the_file_the_url_grants() {
    let d = digest(b"0123456789");
    let mut served = MockServing::new();
    let granted = d.clone();
    served.expect_authorize_get().returning(move |key, _, _| {
        if key.starts_with("sha512/") {
            Ok(granted.clone())
        } else {
            Err(BlobError::Forbidden("not a download URL".into()))
        }
    });
    served
        .expect_open()
        .with(eq(d.clone()), eq(ByteRange::Suffix(3)))
        .times(1)
        .returning(|digest, _| {
            Ok(Opened {
                digest: digest.clone(),
                size: 10,
                range: Some((7, 9)),
                body: body(b"789"),
            })
        });
    let svc = service(MockMetadataStore::new(), vec![serving(served)]);
    let opened = svc
        .serve_blob(
            &region("east"),
            &format!("sha512/{d}"),
            "",
            ByteRange::Suffix(3),
        )
        .await
        .expect("served");
    assert_eq!((opened.digest, opened.range), (d, Some((7, 9))));
    let e = svc
        .serve_blob(&region("east"), "pending/x", "", ByteRange::Full)
        .await
        .expect_err("what the store refuses is never opened");
    assert_eq!(e.kind(), ErrorKind::Denied);
}
