//! Test support (feature `testing`): fresh, empty schemas on the throwaway
//! test database.

/// Creates a schema on `TOOLTOOL_TEST_DATABASE_URL` and answers a URL
/// whose sessions use it (and `public`, for pg_trgm), with its name.
/// Without a database it panics: such tests must not pass silently.
pub async fn fresh_schema() -> (String, String) {
    let url = std::env::var("TOOLTOOL_TEST_DATABASE_URL").expect(
        "TOOLTOOL_TEST_DATABASE_URL must name a throwaway PostgreSQL database (scripts/test creates one)",
    );
    let schema = {
        use std::hash::{BuildHasher, RandomState};
        format!(
            "t{:016x}",
            RandomState::new().hash_one(std::time::Instant::now())
        )
    };
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("the test database answers");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("create schema");
    let separator = if url.contains('?') { '&' } else { '?' };
    (
        format!("{url}{separator}options=-c%20search_path%3D{schema},public"),
        schema,
    )
}

/// A session of its own on the test database, for what a test does
/// behind the store's back.
pub async fn admin() -> tokio_postgres::Client {
    let url = std::env::var("TOOLTOOL_TEST_DATABASE_URL").expect("TOOLTOOL_TEST_DATABASE_URL");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("the test database answers");
    tokio::spawn(connection);
    client
}

/// Terminates every session named `application` on the test database
/// (`pg_terminate_backend`, as an operator or a failover would); how many.
pub async fn terminate_sessions(application: &str) -> u64 {
    admin()
        .await
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            &[&application],
        )
        .await
        .expect("terminate")
        .get::<_, i64>(0)
        .try_into()
        .expect("count")
}

/// The sessions named `application` on the test database.
pub async fn sessions_named(application: &str) -> i64 {
    admin()
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            &[&application],
        )
        .await
        .expect("count")
        .get(0)
}
