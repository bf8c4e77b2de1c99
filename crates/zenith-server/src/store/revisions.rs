//! Revisions: the immutable record of each deploy, and the numbering and pruning of an app's
//! history.
//!
//! Numbers come from the app's `last_revision` counter, which only grows: pruning never lets a
//! number be reused, so `rollback web 7` always means the same deploy.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{OptionalExtension, Row, ToSql, Transaction, params};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, TxError, from_millis, now, to_millis};

/// One immutable deploy of an app. Only `status`, `message` and `snapshot_id` change later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionRow {
    pub app: String,
    pub number: u64,
    pub created_at: Timestamp,
    pub spec_json: String,
    pub digest: String,
    /// Where the spec came from: a file path, a git commit, or `rollback of N`.
    pub source: String,
    pub status: RevisionStatus,
    pub message: String,
    /// The state snapshot taken just before this revision rolled out, if any.
    pub snapshot_id: Option<String>,
}

/// Where a revision is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RevisionStatus {
    Pending,
    Progressing,
    Complete,
    Failed,
    Superseded,
    RolledBack,
}

impl RevisionStatus {
    pub const ALL: [RevisionStatus; 6] = [
        Self::Pending,
        Self::Progressing,
        Self::Complete,
        Self::Failed,
        Self::Superseded,
        Self::RolledBack,
    ];

    /// The spelling used in the database, the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Progressing => "progressing",
            Self::Complete => "complete",
            Self::Failed => "failed",
            Self::Superseded => "superseded",
            Self::RolledBack => "rolled-back",
        }
    }

    /// The rollout of this revision has ended, one way or another.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Complete | Self::Failed | Self::Superseded | Self::RolledBack
        )
    }
}

impl fmt::Display for RevisionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RevisionStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "unknown revision status `{text}` (expected one of pending, progressing, \
                 complete, failed, superseded, rolled-back)"
                )
            })
    }
}

impl ToSql for RevisionStatus {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl FromSql for RevisionStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value
            .as_str()?
            .parse()
            .map_err(|err: String| FromSqlError::Other(err.into()))
    }
}

const REVISION_COLUMNS: &str = "app, number, created_at, spec_json, digest, source, status, message, snapshot_id";

fn revision_row(row: &Row<'_>) -> rusqlite::Result<RevisionRow> {
    Ok(RevisionRow {
        app: row.get(0)?,
        number: row.get(1)?,
        created_at: from_millis(2, row.get(2)?)?,
        spec_json: row.get(3)?,
        digest: row.get(4)?,
        source: row.get(5)?,
        status: row.get(6)?,
        message: row.get(7)?,
        snapshot_id: row.get(8)?,
    })
}

impl Store {
    /// Records a new deploy of `app` in one transaction: creates the app if it is new,
    /// allocates the next revision number, inserts the revision as `pending`, points
    /// `desired_revision` at it, then prunes the history down to the newest `history_limit`
    /// revisions. Pruning never deletes the desired or active revision, nor one that still has
    /// replicas recorded, so the history can briefly hold more than the limit.
    pub fn create_revision(
        &self,
        app: &str,
        spec_json: &str,
        digest: &str,
        source: &str,
        history_limit: usize,
    ) -> Result<u64, StoreError> {
        self.write("record a new revision", |tx| {
            let now = to_millis(now());
            tx.execute(
                "INSERT INTO apps (name, status, updated_at) VALUES (?1, 'pending', ?2)
                 ON CONFLICT (name) DO NOTHING",
                params![app, now],
            )?;
            let number: u64 = tx.query_row(
                "UPDATE apps SET last_revision = last_revision + 1 WHERE name = ?1
                 RETURNING last_revision",
                [app],
                |row| row.get(0),
            )?;
            tx.execute(
                "INSERT INTO revisions (app, number, created_at, spec_json, digest, source, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![app, number, now, spec_json, digest, source, RevisionStatus::Pending],
            )?;
            tx.execute(
                "UPDATE apps SET desired_revision = ?2, updated_at = ?3 WHERE name = ?1",
                params![app, number, now],
            )?;
            tx.execute(
                "DELETE FROM revisions WHERE app = ?1
                   AND number NOT IN (SELECT number FROM revisions WHERE app = ?1
                                      ORDER BY number DESC LIMIT ?2)
                   AND number NOT IN (SELECT coalesce(desired_revision, 0) FROM apps
                                      WHERE name = ?1
                                      UNION SELECT coalesce(active_revision, 0) FROM apps
                                      WHERE name = ?1
                                      UNION SELECT revision FROM replicas WHERE app = ?1)",
                params![app, history_limit],
            )?;
            Ok(number)
        })
    }

    /// Revision `number` of `app`, or `None` if the app or revision does not exist.
    pub fn revision(&self, app: &str, number: u64) -> Result<Option<RevisionRow>, StoreError> {
        self.read("read a revision", |conn| {
            let sql = format!("SELECT {REVISION_COLUMNS} FROM revisions WHERE app = ?1 AND number = ?2");
            conn.query_row(&sql, params![app, number], revision_row).optional()
        })
    }

    /// The kept history of `app`, newest first; empty if the app does not exist.
    pub fn revisions(&self, app: &str) -> Result<Vec<RevisionRow>, StoreError> {
        self.read("list revisions", |conn| {
            let sql = format!("SELECT {REVISION_COLUMNS} FROM revisions WHERE app = ?1 ORDER BY number DESC");
            conn.prepare(&sql)?.query_map([app], revision_row)?.collect()
        })
    }

    /// Moves a revision to `status`, with a message saying why.
    pub fn set_revision_status(
        &self,
        app: &str,
        number: u64,
        status: RevisionStatus,
        message: &str,
    ) -> Result<(), StoreError> {
        self.write("set a revision's status", |tx| {
            let changed = tx.execute(
                "UPDATE revisions SET status = ?3, message = ?4 WHERE app = ?1 AND number = ?2",
                params![app, number, status, message],
            )?;
            revision_changed(tx, changed, app, number)
        })
    }

    /// Records the id of the state snapshot taken before this revision rolled out.
    pub fn set_revision_snapshot(&self, app: &str, number: u64, snapshot_id: &str) -> Result<(), StoreError> {
        self.write("record a revision's snapshot", |tx| {
            let changed = tx.execute(
                "UPDATE revisions SET snapshot_id = ?3 WHERE app = ?1 AND number = ?2",
                params![app, number, snapshot_id],
            )?;
            revision_changed(tx, changed, app, number)
        })
    }
}

/// Turns "no row updated" into the precise unknown-app or unknown-revision error.
fn revision_changed(tx: &Transaction<'_>, rows: usize, app: &str, number: u64) -> Result<(), TxError> {
    match rows {
        0 => ensure_revision(tx, app, number),
        _ => Ok(()),
    }
}

/// Fails with the precise "unknown app" or "unknown revision" error unless both exist.
pub(super) fn ensure_revision(tx: &Transaction<'_>, app: &str, number: u64) -> Result<(), TxError> {
    let app_exists = tx
        .query_row("SELECT 1 FROM apps WHERE name = ?1", [app], |_| Ok(()))
        .optional()?
        .is_some();
    if !app_exists {
        return Err(StoreError::UnknownApp { app: app.to_owned() }.into());
    }
    let exists = tx
        .query_row(
            "SELECT 1 FROM revisions WHERE app = ?1 AND number = ?2",
            params![app, number],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    match exists {
        true => Ok(()),
        false => Err(StoreError::UnknownRevision {
            app: app.to_owned(),
            number,
        }
        .into()),
    }
}
