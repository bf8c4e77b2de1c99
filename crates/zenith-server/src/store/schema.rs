//! The database schema and its migrations, keyed on SQLite's `PRAGMA user_version`.
//!
//! `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`. Steps are append-only: a
//! released step is never edited, a change is a new step. All pending steps and the version bump
//! run in one transaction, so a crash mid-migration leaves the old version intact. A database
//! whose version is beyond the list was written by a newer zenith and is refused rather than
//! guessed at.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Version 1. STRICT tables make SQLite reject a value of the wrong type instead of storing it.
/// Times are Unix milliseconds (see `store::to_millis`).
const V1: &str = "
CREATE TABLE apps (
    name             TEXT PRIMARY KEY NOT NULL,
    -- The highest revision number ever allocated: numbers are never reused, even after the
    -- history is pruned, so `rollback web 7` always means the same thing.
    last_revision    INTEGER NOT NULL DEFAULT 0,
    desired_revision INTEGER,
    active_revision  INTEGER,
    status           TEXT NOT NULL,
    message          TEXT NOT NULL DEFAULT '',
    -- The rollout state machine of the app's current rollout, owned by the rollout engine.
    rollout_json     TEXT,
    updated_at       INTEGER NOT NULL
) STRICT;

CREATE TABLE revisions (
    app         TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    number      INTEGER NOT NULL CHECK (number > 0),
    created_at  INTEGER NOT NULL,
    spec_json   TEXT NOT NULL,
    digest      TEXT NOT NULL,
    source      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN
                    ('pending', 'progressing', 'complete', 'failed', 'superseded', 'rolled-back')),
    message     TEXT NOT NULL DEFAULT '',
    snapshot_id TEXT,
    PRIMARY KEY (app, number)
) STRICT;

CREATE TABLE replicas (
    id          TEXT PRIMARY KEY NOT NULL,
    app         TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    service     TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    port        INTEGER,
    record_json TEXT NOT NULL,
    state       TEXT NOT NULL,
    started_at  INTEGER,
    restarts    INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX replicas_by_app ON replicas (app, service);

-- AUTOINCREMENT so a revoked token's id is never handed to a new token.
CREATE TABLE tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL UNIQUE,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'deployer', 'viewer')),
    secret_hash  BLOB NOT NULL CHECK (length(secret_hash) = 32),
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
) STRICT;

-- AUTOINCREMENT so sequence numbers stay monotonic even if old entries are deleted.
-- `app` has no foreign key: the audit trail outlives the apps it mentions.
CREATE TABLE audit (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    time   INTEGER NOT NULL,
    actor  TEXT,
    role   TEXT,
    action TEXT NOT NULL,
    app    TEXT,
    target TEXT NOT NULL,
    result TEXT NOT NULL CHECK (result IN ('ok', 'denied', 'error')),
    detail TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX audit_by_app ON audit (app, seq);
";

/// Version 2: what the daemon's snapshot work needs beyond the repository. `snapshot_id` of
/// `revisions` (from version 1) holds the id of the set of state snapshots taken before the
/// revision rolled out.
const V2: &str = "
CREATE TABLE snapshot_runs (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    time        INTEGER NOT NULL,
    app         TEXT NOT NULL,
    type        TEXT NOT NULL,
    op          TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    ok          INTEGER NOT NULL CHECK (ok IN (0, 1)),
    duration_ms INTEGER NOT NULL,
    snapshot_id TEXT,
    bytes       INTEGER,
    stored      INTEGER,
    message     TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX snapshot_runs_by_kind ON snapshot_runs (app, type, op, seq);

CREATE TABLE schedule_state (
    app              TEXT NOT NULL,
    name             TEXT NOT NULL,
    registered_at    INTEGER NOT NULL,
    last_run_at      INTEGER,
    last_ok          INTEGER,
    last_message     TEXT NOT NULL DEFAULT '',
    last_duration_ms INTEGER,
    PRIMARY KEY (app, name)
) STRICT;

-- At most one operation on an app's state at a time; the row lives until it has finished.
CREATE TABLE state_ops (
    app        TEXT PRIMARY KEY NOT NULL,
    json       TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
";

const MIGRATIONS: &[&str] = &[V1, V2];

/// Applies every step between the database's version and [`SCHEMA_VERSION`].
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let sql = |op| {
        move |source| StoreError::Sqlite {
            path: path.to_owned(),
            op,
            source,
        }
    };
    // IMMEDIATE: two processes opening a fresh file at once must not both apply step 1.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql("start the schema migration"))?;
    let found: u32 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(sql("read the schema version"))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for step in &MIGRATIONS[found as usize..] {
        tx.execute_batch(step).map_err(sql("migrate the schema"))?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(sql("record the schema version"))?;
    tx.commit().map_err(sql("commit the schema migration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_applies_to_an_empty_database() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, Path::new(":memory:")).unwrap();
        let version: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        // Migrating again is a no-op, not a "table already exists" failure.
        migrate(&mut conn, Path::new(":memory:")).unwrap();
    }

    #[test]
    fn a_newer_schema_is_refused_with_both_versions() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
        let err = migrate(&mut conn, Path::new("state.db")).unwrap_err();
        assert!(matches!(err, StoreError::TooNew { found, supported, .. }
            if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION));
        let message = err.to_string();
        assert!(message.contains("state.db"), "{message}");
        assert!(
            message.contains(&format!("schema version {}", SCHEMA_VERSION + 1)),
            "{message}"
        );
    }
}
