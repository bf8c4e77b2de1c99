//! The daemon's state store: one SQLite file holding apps, revisions, replicas, API tokens and
//! the audit log.
//!
//! SQLite because the state must be transactional (a deploy allocates a revision number, inserts
//! the revision and moves the app's desired pointer as one step) and inspectable with stock
//! tools when something goes wrong. Every commit is durable (`synchronous = FULL` in WAL mode):
//! a revision or audit record that the API acknowledged survives `kill -9` and power loss.
//!
//! The API is synchronous and every call is short. [`Store`] is a cheap clone around one
//! connection behind a mutex; async callers use it from `spawn_blocking` or directly, and the
//! lock is never held across an `.await` because no method is async. The per-table methods live
//! in the submodules; this file owns opening, errors and the transaction helpers they share.

mod apps;
mod audit;
mod replicas;
mod revisions;
mod schema;
mod state;
mod tokens;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::types::Type;
use rusqlite::{Connection, Transaction, TransactionBehavior};

pub use apps::AppRow;
pub use audit::{AuditEntry, AuditRecord, AuditResult};
pub use replicas::ReplicaRow;
pub use revisions::{RevisionRow, RevisionStatus};
pub use schema::SCHEMA_VERSION;
pub use state::{ScheduleRow, SnapshotRun};

/// How long a statement waits for another connection's lock (a `sqlite3` shell, a backup)
/// before failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything that can go wrong in the store. Database failures name the file and the operation
/// under way; refusals name the app, revision or token involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {op} in the state database {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// The I/O error's own message names the path.
    #[error("cannot create the state database: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the state database {} has schema version {found}, but this zenith only understands \
         versions up to {supported}: it was written by a newer zenith; run that version, or move \
         the file aside to start with an empty state",
        path.display()
    )]
    TooNew { path: PathBuf, found: u32, supported: u32 },
    #[error("the state database {} could not switch to WAL mode (journal mode is {mode:?}); \
             put the data directory on a local filesystem", path.display())]
    NoWal { path: PathBuf, mode: String },
    #[error("no app named `{app}`")]
    UnknownApp { app: String },
    #[error("app `{app}` has no revision {number} (it may have been pruned from the history)")]
    UnknownRevision { app: String, number: u64 },
    #[error("a token named `{name}` already exists; pick another name or revoke it first")]
    TokenExists { name: String },
    #[error("invalid token name `{name}`: {reason}")]
    InvalidTokenName { name: String, reason: &'static str },
    #[error(
        "refusing to revoke `{name}`: it is the last admin token, and without one nobody could \
         manage tokens again; create another with `zenith token create --role admin` first"
    )]
    LastAdminToken { name: String },
    #[error("cannot read random bytes from the operating system for a new token: {0}")]
    Random(getrandom::Error),
}

/// A handle on the state database. Clones share one connection.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the database at `path`, creating it (mode 0600) if it does not exist, and brings
    /// its schema up to [`SCHEMA_VERSION`]. Refuses a database written by a newer zenith.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        create_private(path)?;
        let sql = |op| {
            move |source| StoreError::Sqlite {
                path: path.to_owned(),
                op,
                source,
            }
        };
        let mut conn = Connection::open(path).map_err(sql("open the database"))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql("set the busy timeout"))?;
        // WAL lets readers (a `sqlite3` shell, a backup) run beside the daemon's writes; FULL
        // syncs the WAL on every commit, which is what makes an acknowledged write durable.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))
            .map_err(sql("enable WAL mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NoWal {
                path: path.to_owned(),
                mode,
            });
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql("set synchronous"))?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(sql("enable foreign keys"))?;
        schema::migrate(&mut conn, path)?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                conn: Mutex::new(conn),
            }),
        })
    }

    /// The database file this store writes.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave the connection half-written: SQLite rolls
        // back an unfinished transaction when its guard drops. So a poisoned lock is safe to use.
        self.inner.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the connection outside an explicit transaction (single statements).
    fn read<T>(&self, op: &'static str, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        f(&self.lock()).map_err(|source| self.sql_error(op, source))
    }

    /// Runs `f` in an IMMEDIATE transaction and commits if it returns `Ok`. Immediate, so the
    /// write lock is taken up front instead of failing halfway on a lock upgrade.
    fn write<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let run = || -> Result<T, TxError> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        };
        run().map_err(|err| match err {
            TxError::Sql(source) => self.sql_error(op, source),
            TxError::Store(err) => err,
        })
    }

    fn sql_error(&self, op: &'static str, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.inner.path.clone(),
            op,
            source,
        }
    }
}

/// An error inside a transaction: a database failure (given its path and operation by
/// [`Store::write`]) or a domain refusal that is already a complete [`StoreError`].
enum TxError {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for TxError {
    fn from(err: rusqlite::Error) -> Self {
        TxError::Sql(err)
    }
}

impl From<StoreError> for TxError {
    fn from(err: StoreError) -> Self {
        TxError::Store(err)
    }
}

/// Creates `path` with mode 0600 if it is missing, so the database (which holds token hashes
/// and app specs) is never readable by other users, not even for the instant before a chmod.
/// SQLite gives the `-wal` and `-shm` files the same permissions as the database.
fn create_private(path: &Path) -> Result<(), StoreError> {
    use fs_err::os::unix::fs::OpenOptionsExt;
    let create = || -> std::io::Result<()> {
        let created = fs_err::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        match created {
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
            Err(err) => return Err(err),
        }
        // Make the new directory entry durable, or a power cut could lose the whole file
        // along with the first commits made to it.
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        fs_err::File::open(dir)?.sync_all()
    };
    create().map_err(|source| StoreError::Create {
        path: path.to_owned(),
        source,
    })
}

/// Times are stored as integer Unix milliseconds: they sort and compare in SQL, and
/// `datetime(col / 1000, 'unixepoch')` makes them readable in a shell.
fn to_millis(time: Timestamp) -> i64 {
    time.as_millisecond()
}

fn from_millis(column: usize, millis: i64) -> rusqlite::Result<Timestamp> {
    Timestamp::from_millisecond(millis)
        .map_err(|err| rusqlite::Error::FromSqlConversionFailure(column, Type::Integer, err.into()))
}

/// The current time at the precision the store keeps, so a row returned by a write compares
/// equal to the same row read back.
fn now() -> Timestamp {
    let now = Timestamp::now();
    Timestamp::from_millisecond(now.as_millisecond()).unwrap_or(now)
}
