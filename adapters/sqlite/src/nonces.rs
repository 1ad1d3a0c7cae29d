//! Spent Hawk nonces (`MetadataStore::spend_nonce`), in a database file of
//! their own next to the metadata (`<name>.nonces.sqlite3`), with its own
//! connection.
//!
//! Every Hawk request spends one. In the metadata database, each spend
//! would take the one connection that downloads read from, and commit with
//! `synchronous=FULL`: measured, local-Hawk downloads fell to 0.10 of
//! anonymous ones with a commit per request, and to 0.6 with commits
//! grouped but on that connection. So spends are answered from memory,
//! which holds every key of the window (the file's, loaded at start-up,
//! and this process's), and written behind on the nonce file's own
//! connection by one writer task, in groups, one commit every
//! [`WRITE_DELAY`] at most. A nonce is on disk within that delay (plus one
//! commit) of its request; a crash in that time forgets it, and the file
//! runs with `synchronous=NORMAL` (a power loss may forget the last
//! commits too: nonces protect a 15-minute window, not data). Beyond
//! [`MAX_IN_MEMORY`] keys in one window (over 1 100 Hawk requests a second
//! for 15 minutes) the oldest are forgotten.

use std::collections::{HashSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use tooltool_ports::{Chain, MetadataError};

use crate::rows::{from_micros, internal, micros};

/// How long accepted spends gather before one commit writes them: the
/// most a crash can forget.
pub(crate) const WRITE_DELAY: std::time::Duration = std::time::Duration::from_millis(50);

/// Keys kept in memory at most: beyond, the oldest go first.
const MAX_IN_MEMORY: usize = 1 << 20;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS hawk_nonces (
    key        BLOB    PRIMARY KEY CHECK (length(key) = 32),
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS hawk_nonces_expires ON hawk_nonces (expires_at);";

/// A nonce accepted, to be written.
type Accepted = ([u8; 32], DateTime<Utc>);

#[derive(Default)]
struct State {
    /// Every key of the window, in acceptance order: refused at once,
    /// written or not.
    spent: HashSet<[u8; 32]>,
    order: VecDeque<Accepted>,
    /// Accepted and not yet taken by the writer.
    queued: Vec<Accepted>,
    writing: bool,
}

/// The spent nonces of the embedded store.
pub(crate) struct Nonces {
    state: Mutex<State>,
    conn: Mutex<Connection>,
}

impl Nonces {
    /// Opens the nonce file beside `metadata` (in memory without one),
    /// and loads the keys it holds.
    pub(crate) fn open(metadata: Option<&Path>) -> Result<Self, MetadataError> {
        let conn = match metadata {
            Some(path) => {
                let conn = Connection::open(path.with_extension("nonces.sqlite3"))
                    .map_err(MetadataError::unavailable)?;
                // Like the metadata file: one process at a time (whose
                // writer may still be finishing its last group).
                conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
                    .map_err(internal)?;
                conn.busy_timeout(std::time::Duration::from_secs(2))
                    .map_err(internal)?;
                conn
            }
            None => Connection::open_in_memory().map_err(internal)?,
        };
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(internal)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(internal)?;
        conn.execute_batch(SCHEMA).map_err(internal)?;
        let state = load(&conn)?;
        Ok(Self {
            state: Mutex::new(state),
            conn: Mutex::new(conn),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Spends `key`: `true` the first time within its window. Starts the
    /// writer when none runs.
    pub(crate) fn spend(self: &Arc<Self>, key: [u8; 32], expires: DateTime<Utc>) -> bool {
        let start_writer = {
            let mut state = self.state();
            // A key expiring a whole window before this one has expired:
            // its timestamp was accepted at most a window before this one's.
            let closed = expires - chrono::Duration::minutes(30);
            while let Some(&(old, oldest)) = state.order.front() {
                if oldest > closed && state.order.len() < MAX_IN_MEMORY {
                    break;
                }
                state.order.pop_front();
                state.spent.remove(&old);
            }
            if !state.spent.insert(key) {
                return false;
            }
            state.order.push_back((key, expires));
            state.queued.push((key, expires));
            !std::mem::replace(&mut state.writing, true)
        };
        if start_writer {
            let this = Arc::clone(self);
            tokio::spawn(async move { this.write().await });
        }
        true
    }

    /// The writer: commits accepted spends a group at a time until none is
    /// queued. A group that cannot be written is still refused from memory
    /// for its window.
    async fn write(self: Arc<Self>) {
        loop {
            tokio::time::sleep(WRITE_DELAY).await;
            let group = {
                let mut state = self.state();
                let group = std::mem::take(&mut state.queued);
                // Stop under the same lock, so that a spend queued right
                // after starts a new writer.
                if group.is_empty() {
                    state.writing = false;
                    return;
                }
                group
            };
            let this = Arc::clone(&self);
            let written = tokio::task::spawn_blocking(move || this.insert(&group))
                .await
                .map_err(internal)
                .and_then(|r| r);
            if let Err(e) = written {
                tracing::error!(error = %Chain(&e), "Hawk nonces could not be written: a restart would forget them");
            }
        }
    }

    fn insert(&self, group: &[Accepted]) -> Result<(), MetadataError> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = conn.transaction().map_err(internal)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO hawk_nonces (key, expires_at) VALUES (?1, ?2)",
                )
                .map_err(internal)?;
            for (key, expires) in group {
                insert
                    .execute(params![key.as_slice(), micros(*expires)])
                    .map_err(internal)?;
            }
        }
        tx.commit().map_err(internal)
    }

    /// Forgets the keys whose window closed before `before`, in memory and
    /// on disk; how many (memory holds them all, written yet or not).
    pub(crate) fn forget(&self, before: DateTime<Utc>) -> Result<u64, MetadataError> {
        let forgotten = {
            let mut state = self.state();
            let State { spent, order, .. } = &mut *state;
            let held = order.len();
            order.retain(|(key, expires)| {
                let keep = *expires >= before;
                if !keep {
                    spent.remove(key);
                }
                keep
            });
            held - order.len()
        };
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        conn.execute(
            "DELETE FROM hawk_nonces WHERE expires_at < ?1",
            [micros(before)],
        )
        .map_err(internal)?;
        Ok(forgotten as u64)
    }
}

/// The keys of the file, newest last (at most [`MAX_IN_MEMORY`], newest).
fn load(conn: &Connection) -> Result<State, MetadataError> {
    let mut rows = conn
        .prepare(
            "SELECT key, expires_at FROM (SELECT key, expires_at FROM hawk_nonces \
             ORDER BY expires_at DESC LIMIT ?1) ORDER BY expires_at",
        )
        .map_err(internal)?;
    let found = rows
        .query_map([MAX_IN_MEMORY as i64], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
        })
        .map_err(internal)?;
    let mut state = State::default();
    for row in found {
        let (key, expires) = row.map_err(internal)?;
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| internal("a stored nonce key is not 32 bytes"))?;
        state.spent.insert(key);
        state.order.push_back((key, from_micros(expires)?));
    }
    Ok(state)
}
