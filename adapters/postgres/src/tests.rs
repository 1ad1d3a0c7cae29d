//! The PostgreSQL adapter's tests, on fresh schemas of the throwaway test
//! database: the MetadataStore contract, TLS, concurrent migrations.

mod contract {
    use std::time::Duration;

    /// A store on a fresh schema, so every test starts empty.
    pub(crate) async fn store() -> crate::PgStore {
        let (url, _) = crate::testing::fresh_schema().await;
        crate::PgStore::connect(&url, &crate::PgOptions::default(), Duration::from_secs(5))
            .await
            .expect("store")
    }

    tooltool_ports::metadata_store_contract!(store().await);
}

mod tls_tests {
    use tooltool_ports::MetadataStore;

    #[tokio::test]
    async fn sslmode_require_encrypts_the_connection() {
        let plain = super::contract::store().await;
        plain.ping().await.expect("plain");
        let url = std::env::var("TOOLTOOL_TEST_DATABASE_URL").expect("test database");
        let separator = if url.contains('?') { '&' } else { '?' };
        let tls_url = format!("{url}{separator}sslmode=require");
        let store = crate::PgStore::connect(
            &tls_url,
            &crate::PgOptions::default(),
            std::time::Duration::from_secs(5),
        )
        .await
        .expect("TLS connection (the local server has ssl=on)");
        assert!(encrypted(&store).await, "the session is encrypted");
        assert!(
            !encrypted(&plain).await,
            "without sslmode=require the session is plain"
        );
    }

    /// Whether a session of `store` runs over TLS, as the server sees it.
    async fn encrypted(store: &crate::PgStore) -> bool {
        let conn = store.pool.get().await.expect("connection");
        conn.query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("query")
        .get(0)
    }
}

mod migration_tests {
    use std::time::Duration;

    use tooltool_ports::MetadataStore;

    /// Four processes starting at once on a new database: the advisory lock
    /// serializes their migrations, so all of them start.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_start_ups_all_migrate() {
        let (url, schema) = crate::testing::fresh_schema().await;
        let admin = std::env::var("TOOLTOOL_TEST_DATABASE_URL").expect("test database");
        let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        let starts = (0..4).map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                crate::PgStore::connect(&url, &crate::PgOptions::default(), Duration::from_secs(5))
                    .await
            })
        });
        for start in starts {
            let store = start.await.expect("join").expect("every process starts");
            store.ping().await.expect("ping");
        }
        let applied: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM {schema}.refinery_schema_history"),
                &[],
            )
            .await
            .expect("history")
            .get(0);
        let embedded = crate::embedded::migrations::runner().get_migrations().len();
        assert_eq!(
            applied,
            i64::try_from(embedded).expect("few"),
            "each migration ran once"
        );
    }
}
