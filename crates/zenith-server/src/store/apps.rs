//! Apps: one row per deployed app, with its status and its two pointers into the revision
//! history.
//!
//! `desired_revision` is what should run and `active_revision` what last finished rolling out;
//! the rollout engine moves them, and the store only checks that they point at a revision that
//! exists. Apps are created by their first deploy (`Store::create_revision`).

use jiff::Timestamp;
use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::revisions::ensure_revision;
use super::{Store, StoreError, TxError, from_millis, now, to_millis};

/// One app as the daemon last recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRow {
    pub name: String,
    /// The revision that should run; set by every deploy, so `Some` for every app in practice.
    pub desired_revision: Option<u64>,
    /// The revision whose rollout last completed; `None` until the first one does.
    pub active_revision: Option<u64>,
    /// The highest revision number allocated so far; the next deploy gets this plus one.
    pub last_revision: u64,
    pub status: String,
    pub message: String,
    /// The persisted state of the app's rollout, owned by the rollout engine.
    pub rollout_json: Option<String>,
    pub updated_at: Timestamp,
}

const APP_COLUMNS: &str = "name, desired_revision, active_revision, last_revision, status, \
                           message, rollout_json, updated_at";

fn app_row(row: &Row<'_>) -> rusqlite::Result<AppRow> {
    Ok(AppRow {
        name: row.get(0)?,
        desired_revision: row.get(1)?,
        active_revision: row.get(2)?,
        last_revision: row.get(3)?,
        status: row.get(4)?,
        message: row.get(5)?,
        rollout_json: row.get(6)?,
        updated_at: from_millis(7, row.get(7)?)?,
    })
}

impl Store {
    /// The app named `name`, or `None` if there is none.
    pub fn app(&self, name: &str) -> Result<Option<AppRow>, StoreError> {
        self.read("read an app", |conn| {
            let sql = format!("SELECT {APP_COLUMNS} FROM apps WHERE name = ?1");
            conn.query_row(&sql, [name], app_row).optional()
        })
    }

    /// All apps, by name.
    pub fn apps(&self) -> Result<Vec<AppRow>, StoreError> {
        self.read("list apps", |conn| {
            let sql = format!("SELECT {APP_COLUMNS} FROM apps ORDER BY name");
            conn.prepare(&sql)?.query_map([], app_row)?.collect()
        })
    }

    /// Sets the app's one-word status and its human-readable message.
    pub fn set_app_status(&self, name: &str, status: &str, message: &str) -> Result<(), StoreError> {
        self.write("set an app's status", |tx| {
            let changed = tx.execute(
                "UPDATE apps SET status = ?2, message = ?3, updated_at = ?4 WHERE name = ?1",
                params![name, status, message, to_millis(now())],
            )?;
            app_changed(changed, name)
        })
    }

    /// Points the app at the revision that should run. The revision must exist.
    pub fn set_desired(&self, name: &str, revision: u64) -> Result<(), StoreError> {
        self.set_pointer("set the desired revision", name, "desired_revision", revision)
    }

    /// Records the revision whose rollout completed. The revision must exist.
    pub fn set_active(&self, name: &str, revision: u64) -> Result<(), StoreError> {
        self.set_pointer("set the active revision", name, "active_revision", revision)
    }

    /// Saves (or, with `None`, clears) the app's rollout state so a restarted daemon can resume.
    pub fn set_rollout(&self, name: &str, rollout_json: Option<&str>) -> Result<(), StoreError> {
        self.write("save a rollout's state", |tx| {
            let changed = tx.execute(
                "UPDATE apps SET rollout_json = ?2, updated_at = ?3 WHERE name = ?1",
                params![name, rollout_json, to_millis(now())],
            )?;
            app_changed(changed, name)
        })
    }

    /// Deletes the app with its revisions and replica records. Returns `false` if there was no
    /// such app. The audit log keeps its entries about the app.
    pub fn delete_app(&self, name: &str) -> Result<bool, StoreError> {
        self.write("delete an app", |tx| {
            Ok(tx.execute("DELETE FROM apps WHERE name = ?1", [name])? > 0)
        })
    }

    fn set_pointer(&self, op: &'static str, name: &str, column: &str, revision: u64) -> Result<(), StoreError> {
        self.write(op, |tx| {
            ensure_revision(tx, name, revision)?;
            let sql = format!("UPDATE apps SET {column} = ?2, updated_at = ?3 WHERE name = ?1");
            tx.execute(&sql, params![name, revision, to_millis(now())])?;
            Ok(())
        })
    }
}

/// Turns "no row updated" into [`StoreError::UnknownApp`].
fn app_changed(rows: usize, name: &str) -> Result<(), TxError> {
    match rows {
        0 => Err(StoreError::UnknownApp { app: name.to_owned() }.into()),
        _ => Ok(()),
    }
}
