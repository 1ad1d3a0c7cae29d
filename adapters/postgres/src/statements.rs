//! Every statement of the store goes through [`Statements`]: prepared once
//! per connection and kept in deadpool's per-connection statement cache,
//! so a call is one round trip (Bind + Execute) instead of two (Parse +
//! Describe, then Bind + Execute) and the server may keep its plan.
//! Searches are the exception ([`Statements::query_typed`]): the best plan
//! of `LIKE $1` depends on the pattern (a selective fragment walks a
//! trigram index, a broad one the primary key), and PostgreSQL switches a
//! prepared statement to one generic plan after five runs (measured:
//! batch searches went from 10 ms to 50-60 ms at 100 k rows), so they are
//! sent unnamed, in one round trip too, and planned for their values.
//!
//! The statement functions take `C: Statements`, never a concrete client
//! or transaction: inside them only these methods resolve, so a statement
//! cannot bypass the cache by calling the driver's own `query` (an
//! inherent method of a concrete type would win over a trait method).

use std::future::Future;

use deadpool_postgres::GenericClient;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Error, Row};

/// The statements a connection or a transaction runs, each prepared once
/// per connection. Same meaning as the tokio-postgres methods of the same
/// names.
pub(crate) trait Statements: Sync {
    fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, Error>> + Send;

    fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Option<Row>, Error>> + Send;

    fn query_one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Row, Error>> + Send;

    fn execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, Error>> + Send;

    /// Parameters with their types given (where the server could not infer
    /// them, e.g. a parameter used on both sides of a UNION); never
    /// prepared: planned for these values (searches).
    fn query_typed(
        &self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> impl Future<Output = Result<Vec<Row>, Error>> + Send;
}

/// The driver's own client under a pooled connection or a transaction,
/// for the statements that must not be prepared.
pub(crate) trait Driver {
    type Inner: tokio_postgres::GenericClient + Sync;
    fn driver(&self) -> &Self::Inner;
}

impl Driver for deadpool_postgres::Client {
    type Inner = tokio_postgres::Client;
    fn driver(&self) -> &tokio_postgres::Client {
        self
    }
}

impl<'a> Driver for deadpool_postgres::Transaction<'a> {
    type Inner = tokio_postgres::Transaction<'a>;
    fn driver(&self) -> &tokio_postgres::Transaction<'a> {
        self
    }
}

impl<C: GenericClient + Driver + Sync> Statements for C {
    async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, Error> {
        let statement = self.prepare_cached(sql).await?;
        GenericClient::query(self, &statement, params).await
    }

    async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error> {
        let statement = self.prepare_cached(sql).await?;
        GenericClient::query_opt(self, &statement, params).await
    }

    async fn query_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, Error> {
        let statement = self.prepare_cached(sql).await?;
        GenericClient::query_one(self, &statement, params).await
    }

    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Error> {
        let statement = self.prepare_cached(sql).await?;
        GenericClient::execute(self, &statement, params).await
    }

    async fn query_typed(
        &self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, Error> {
        tokio_postgres::GenericClient::query_typed(self.driver(), sql, params).await
    }
}
