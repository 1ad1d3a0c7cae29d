//! Searches: literal matching, caps, cursors, authors among many.

use super::*;

pub async fn search_is_literal_and_capped(store: Store) {
    for (name, message, content) in [
        ("100%.txt", "done 100%", "p1"),
        ("a_b.txt", "under_score", "p2"),
        ("axb.txt", "plain", "p3"),
    ] {
        store
            .create_batch(batch(
                message,
                vec![file(name, content, Visibility::Public)],
            ))
            .await
            .expect("batch");
    }
    let messages =
        |v: Vec<crate::BatchRecord>| v.into_iter().map(|b| b.message).collect::<Vec<_>>();
    assert_eq!(
        messages(store.search_batches("%", None, 10).await.expect("search")),
        ["done 100%"]
    );
    assert_eq!(
        messages(store.search_batches("_", None, 10).await.expect("search")),
        ["under_score"]
    );
    assert_eq!(
        messages(store.search_batches("", None, 10).await.expect("search")),
        ["plain", "under_score", "done 100%"],
        "newest first"
    );
    assert_eq!(
        store
            .search_batches("", None, 2)
            .await
            .expect("search")
            .len(),
        2,
        "capped"
    );
    assert_eq!(
        store
            .search_batches("ali", None, 10)
            .await
            .expect("search")
            .len(),
        3,
        "author matches"
    );
    let names = |q: &str| {
        let store = Arc::clone(&store);
        let q = q.to_owned();
        async move {
            store
                .search_files(&q, None, 10)
                .await
                .expect("search")
                .into_iter()
                .map(|f| f.digest)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names("_b").await, [digest_of(b"p2")]);
    assert_eq!(names("%").await, [digest_of(b"p1")]);
    assert_eq!(names(".txt").await.len(), 3);
    let d = digest_of(b"p3");
    assert_eq!(
        names(&d.as_str()[..10]).await,
        std::slice::from_ref(&d),
        "digest prefix"
    );
    assert!(
        names(&d.as_str()[1..20]).await.is_empty(),
        "digest infix is not a prefix"
    );
    assert!(
        store
            .search_files("", None, 10)
            .await
            .expect("search")
            .iter()
            .all(|f| !f.has_instances())
    );
}

pub async fn batches_are_found_by_author_among_many(store: Store) {
    for i in 0..40 {
        let mut b = batch(
            &format!("m{i}"),
            vec![file(
                &format!("f{i}"),
                &format!("by author {i}"),
                Visibility::Public,
            )],
        );
        b.author = format!("dev{i}@corp.example");
        store.create_batch(b).await.expect("batch");
    }
    let mut solo = batch("solo", vec![file("s", "solo content", Visibility::Public)]);
    solo.author = "solo@else.example".into();
    store.create_batch(solo).await.expect("batch");
    let search = |q: &str, before: Option<i64>, limit: usize| {
        let store = Arc::clone(&store);
        let q = q.to_owned();
        async move {
            store
                .search_batches(&q, before, limit)
                .await
                .expect("search")
                .into_iter()
                .map(|b| (b.id, b.author))
                .collect::<Vec<_>>()
        }
    };
    let authors = |v: &[(i64, String)]| v.iter().map(|(_, a)| a.clone()).collect::<Vec<_>>();
    // Many authors match (a domain): newest first, capped, paged.
    let domain = search("corp.example", None, 100).await;
    assert_eq!(domain.len(), 40);
    assert_eq!(domain[0].1, "dev39@corp.example");
    let first = search("corp.example", None, 10).await;
    assert_eq!(first, domain[..10]);
    let next = search("corp.example", Some(first[9].0), 10).await;
    assert_eq!(next, domain[10..20]);
    // A few authors match.
    let mut expected: Vec<String> = (30..40)
        .rev()
        .map(|i| format!("dev{i}@corp.example"))
        .collect();
    expected.push("dev3@corp.example".into());
    assert_eq!(authors(&search("dev3", None, 100).await), expected);
    assert_eq!(authors(&search("dev3", None, 3).await), expected[..3]);
    assert_eq!(
        authors(&search("solo@", None, 100).await),
        ["solo@else.example"]
    );
    assert_eq!(search("nobody@", None, 100).await, []);
}

pub async fn searches_page_with_cursors(store: Store) {
    for i in 0..5 {
        store
            .create_batch(batch(
                &format!("paged {i}"),
                vec![file(
                    &format!("paged-{i}.bin"),
                    &format!("paged content {i}"),
                    Visibility::Public,
                )],
            ))
            .await
            .expect("batch");
    }
    let first = store
        .search_batches("paged", None, 2)
        .await
        .expect("page 1");
    assert_eq!(
        first.iter().map(|b| b.message.as_str()).collect::<Vec<_>>(),
        ["paged 4", "paged 3"]
    );
    let second = store
        .search_batches("paged", Some(first[1].id), 2)
        .await
        .expect("page 2");
    assert_eq!(
        second
            .iter()
            .map(|b| b.message.as_str())
            .collect::<Vec<_>>(),
        ["paged 2", "paged 1"]
    );
    let last = store
        .search_batches("paged", Some(second[1].id), 2)
        .await
        .expect("page 3");
    assert_eq!(
        last.iter().map(|b| b.message.as_str()).collect::<Vec<_>>(),
        ["paged 0"]
    );

    let mut all: Vec<_> = (0..5)
        .map(|i| digest_of(format!("paged content {i}").as_bytes()))
        .collect();
    all.sort();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .search_files("paged-", after.clone(), 2)
            .await
            .expect("files page");
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        after = page.last().map(|f| f.digest.clone());
        seen.extend(page.into_iter().map(|f| f.digest));
    }
    assert_eq!(seen, all, "every match once, in digest order");
}

/// A page of batches ends before the batch that would bring its files
/// above `MAX_FILES_PER_PAGE` (a batch alone is never cut); the next page
/// continues from there.
pub async fn search_pages_end_at_the_file_budget(store: Store) {
    use tooltool_domain::MAX_FILES_PER_PAGE;
    let sizes = [MAX_FILES_PER_PAGE - 600, 500, 200];
    for (b, count) in sizes.iter().enumerate() {
        let files = (0..*count)
            .map(|i| {
                file(
                    &format!("f{i}.bin"),
                    &format!("budget {b} {i}"),
                    Visibility::Public,
                )
            })
            .collect();
        store
            .create_batch(batch(&format!("budget {b}"), files))
            .await
            .expect("batch");
    }
    let page = |before: Option<i64>| {
        let store = Arc::clone(&store);
        async move {
            store
                .search_batches("budget", before, 10)
                .await
                .expect("search")
        }
    };
    let first = page(None).await;
    assert_eq!(
        first
            .iter()
            .map(|b| (b.message.as_str(), b.files.len()))
            .collect::<Vec<_>>(),
        [("budget 2", 200), ("budget 1", 500)],
        "the oldest batch would pass the budget"
    );
    let second = page(first.last().map(|b| b.id)).await;
    assert_eq!(
        second
            .iter()
            .map(|b| (b.message.as_str(), b.files.len()))
            .collect::<Vec<_>>(),
        [("budget 0", MAX_FILES_PER_PAGE - 600)]
    );
    assert!(page(second.last().map(|b| b.id)).await.is_empty());
}

pub async fn file_uploads_list_every_batch_newest_first(store: Store) {
    let shared = "shared content";
    let mut ids = Vec::new();
    for (message, names) in [
        ("first", vec!["a.bin"]),
        ("other", vec![]),
        ("second", vec!["b.bin", "a-again.bin"]),
        ("third", vec!["c.bin"]),
    ] {
        let mut files: Vec<_> = names
            .iter()
            .map(|n| file(n, shared, Visibility::Public))
            .collect();
        files.push(file(&format!("{message}.txt"), message, Visibility::Public));
        ids.push(
            store
                .create_batch(batch(message, files))
                .await
                .expect("batch")
                .batch
                .id,
        );
    }
    let digest = digest_of(shared.as_bytes());
    let uploads = store
        .file_uploads(&digest, None, 10)
        .await
        .expect("uploads");
    let seen: Vec<_> = uploads
        .iter()
        .map(|u| (u.batch_id, u.message.as_str(), u.filenames.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            (ids[3], "third", vec!["c.bin".to_owned()]),
            (
                ids[2],
                "second",
                vec!["a-again.bin".to_owned(), "b.bin".to_owned()]
            ),
            (ids[0], "first", vec!["a.bin".to_owned()]),
        ],
        "newest first, one entry per batch, its filenames sorted"
    );
    assert_eq!(uploads[0].author, "alice");
    assert_eq!(uploads[0].uploaded, t0());
    let page = store
        .file_uploads(&digest, Some(ids[2]), 1)
        .await
        .expect("page");
    assert_eq!(
        page.iter().map(|u| u.batch_id).collect::<Vec<_>>(),
        [ids[0]],
        "below the cursor, capped"
    );
    let unknown = digest_of(b"never uploaded");
    assert!(
        store
            .file_uploads(&unknown, None, 10)
            .await
            .expect("unknown")
            .is_empty()
    );
}
