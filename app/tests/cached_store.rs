//! The file-record cache passes the MetadataStore contract in front of
//! every store the binary wires it to (it is a decorating adapter: the
//! suite proves it changes nothing a caller can observe).

mod on_sqlite {
    fn store() -> tooltool_cache::CachedStore {
        let inner = tooltool_sqlite::SqliteStore::in_memory().expect("sqlite");
        tooltool_cache::CachedStore::new(std::sync::Arc::new(inner), 1 << 20)
    }

    tooltool_ports::metadata_store_contract!(store());
}

mod on_postgres {
    async fn store() -> tooltool_cache::CachedStore {
        let (url, _) = tooltool_postgres::testing::fresh_schema().await;
        let inner = tooltool_postgres::PgStore::connect(
            &url,
            &tooltool_postgres::PgOptions::default(),
            std::time::Duration::from_secs(5),
        )
        .await
        .expect("store");
        tooltool_cache::CachedStore::new(std::sync::Arc::new(inner), 1 << 20)
    }

    tooltool_ports::metadata_store_contract!(store().await);
}
