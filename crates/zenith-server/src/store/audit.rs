//! The audit log: who did what to which app, and whether it was allowed and worked.
//!
//! Append-only from the API's point of view. Entries are ordered by a sequence number rather
//! than by time, because wall clocks step backwards and two requests can share a millisecond.
//! Each append is its own durable commit, so an acknowledged action is never missing from the
//! log after a crash.

use std::fmt;

use jiff::Timestamp;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{Row, ToSql, params};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, from_millis, to_millis};
use crate::auth::Role;

/// What an API request attempted, as the API layer reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub time: Timestamp,
    /// The name of the token that made the request; `None` when none was presented or valid.
    pub actor: Option<String>,
    pub role: Option<Role>,
    /// What was attempted, e.g. `deploy`, `rollback`, `token.create`.
    pub action: String,
    /// The app acted on, if any; [`Store::audit`] filters on it.
    pub app: Option<String>,
    /// What was acted on, in words: `web`, `web revision 4`, `token ci`.
    pub target: String,
    pub result: AuditResult,
    /// Free text: the error message, the revision created, the reason for a denial.
    pub detail: String,
}

/// An [`AuditEntry`] as stored, with its place in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    #[serde(flatten)]
    pub entry: AuditEntry,
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditResult {
    Ok,
    /// The token's role does not allow the action, or no valid token was presented.
    Denied,
    Error,
}

impl AuditResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Denied => "denied",
            Self::Error => "error",
        }
    }
}

impl fmt::Display for AuditResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ToSql for AuditResult {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl FromSql for AuditResult {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value.as_str()? {
            "ok" => Ok(Self::Ok),
            "denied" => Ok(Self::Denied),
            "error" => Ok(Self::Error),
            other => Err(FromSqlError::Other(format!("unknown audit result `{other}`").into())),
        }
    }
}

fn audit_row(row: &Row<'_>) -> rusqlite::Result<AuditRecord> {
    Ok(AuditRecord {
        seq: row.get(0)?,
        entry: AuditEntry {
            time: from_millis(1, row.get(1)?)?,
            actor: row.get(2)?,
            role: row.get(3)?,
            action: row.get(4)?,
            app: row.get(5)?,
            target: row.get(6)?,
            result: row.get(7)?,
            detail: row.get(8)?,
        },
    })
}

impl Store {
    /// Appends `entry` durably and returns its sequence number.
    pub fn append_audit(&self, entry: &AuditEntry) -> Result<u64, StoreError> {
        self.write("append to the audit log", |tx| {
            let seq = tx.query_row(
                "INSERT INTO audit (time, actor, role, action, app, target, result, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING seq",
                params![
                    to_millis(entry.time),
                    entry.actor,
                    entry.role,
                    entry.action,
                    entry.app,
                    entry.target,
                    entry.result,
                    entry.detail,
                ],
                |row| row.get(0),
            )?;
            Ok(seq)
        })
    }

    /// The newest `limit` entries, newest first, optionally only those about app `app_filter`.
    pub fn audit(&self, limit: usize, app_filter: Option<&str>) -> Result<Vec<AuditRecord>, StoreError> {
        const SELECT: &str = "SELECT seq, time, actor, role, action, app, target, result, detail FROM audit";
        // Two statements rather than `?1 IS NULL OR app = ?1`, so the filtered one can walk the
        // (app, seq) index backwards instead of scanning the whole log.
        self.read("read the audit log", |conn| match app_filter {
            Some(app) => conn
                .prepare_cached(&format!("{SELECT} WHERE app = ?1 ORDER BY seq DESC LIMIT ?2"))?
                .query_map(params![app, limit], audit_row)?
                .collect(),
            None => conn
                .prepare_cached(&format!("{SELECT} ORDER BY seq DESC LIMIT ?1"))?
                .query_map(params![limit], audit_row)?
                .collect(),
        })
    }
}
