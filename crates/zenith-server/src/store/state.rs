//! What the daemon remembers about snapshots beyond the repository itself: every snapshot,
//! restore, verify, drill and prune it ran (for health and `/metrics`), the last and next runs
//! of each schedule, and the operation on an app's state that is under way (so a daemon killed
//! in the middle finishes it on restart).

use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, from_millis, to_millis};

/// One snapshot operation the daemon ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRun {
    pub time: Timestamp,
    pub app: String,
    /// The snapshot type (`state`, `data`, …); empty for repository-wide operations (prune).
    pub kind: String,
    /// `create`, `restore`, `verify`, `drill`, `forget`, `prune`.
    pub op: String,
    /// Why it ran: `before-deploy`, `on-stop`, `restore-on-start`, `scheduled`, `rollback`,
    /// `recover`, `drill`, …
    pub reason: String,
    pub ok: bool,
    pub duration_ms: u64,
    pub snapshot_id: Option<String>,
    /// Bytes of files in the snapshot (create), restored (restore, drill) or read (verify).
    pub bytes: Option<u64>,
    /// Bytes the snapshot added to the repository (create).
    pub stored: Option<u64>,
    pub message: String,
}

/// A schedule's bookkeeping: `name` is `TYPE` (snapshots), `TYPE/verify`, `drill` or `prune`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleRow {
    pub app: String,
    pub name: String,
    /// When the daemon first saw the schedule: a new schedule waits for its first time.
    pub registered_at: Timestamp,
    pub last_run_at: Option<Timestamp>,
    pub last_ok: Option<bool>,
    pub last_message: String,
    pub last_duration_ms: Option<u64>,
}

impl ScheduleRow {
    /// The time `due` counts missed runs from.
    pub fn since(&self) -> Timestamp {
        self.last_run_at.unwrap_or(self.registered_at)
    }
}

impl Store {
    pub fn record_snapshot_run(&self, run: &SnapshotRun) -> Result<(), StoreError> {
        self.write("record a snapshot run", |tx| {
            tx.execute(
                "INSERT INTO snapshot_runs (time, app, type, op, reason, ok, duration_ms, snapshot_id, bytes, stored, message)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    to_millis(run.time),
                    run.app,
                    run.kind,
                    run.op,
                    run.reason,
                    run.ok,
                    run.duration_ms as i64,
                    run.snapshot_id,
                    run.bytes.map(|b| b as i64),
                    run.stored.map(|b| b as i64),
                    run.message,
                ],
            )?;
            // The table is for health and metrics, not an archive: keep the recent past.
            tx.execute(
                "DELETE FROM snapshot_runs WHERE seq <= (SELECT max(seq) FROM snapshot_runs) - 5000",
                [],
            )?;
            Ok(())
        })
    }

    /// The newest run of each (app, type, op), and the newest successful one where that differs.
    pub fn latest_snapshot_runs(&self) -> Result<Vec<SnapshotRun>, StoreError> {
        self.read("read the snapshot runs", |c| {
            let mut stmt = c.prepare(
                "SELECT time, app, type, op, reason, ok, duration_ms, snapshot_id, bytes, stored, message
                 FROM snapshot_runs WHERE seq IN (
                     SELECT max(seq) FROM snapshot_runs GROUP BY app, type, op
                     UNION SELECT max(seq) FROM snapshot_runs WHERE ok = 1 GROUP BY app, type, op)
                 ORDER BY seq",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(SnapshotRun {
                    time: from_millis(0, r.get(0)?)?,
                    app: r.get(1)?,
                    kind: r.get(2)?,
                    op: r.get(3)?,
                    reason: r.get(4)?,
                    ok: r.get(5)?,
                    duration_ms: r.get::<_, i64>(6)? as u64,
                    snapshot_id: r.get(7)?,
                    bytes: r.get::<_, Option<i64>>(8)?.map(|b| b as u64),
                    stored: r.get::<_, Option<i64>>(9)?.map(|b| b as u64),
                    message: r.get(10)?,
                })
            })?;
            rows.collect()
        })
    }

    /// The schedule's row, created (registered now) when the daemon sees it the first time.
    pub fn schedule(&self, app: &str, name: &str, now: Timestamp) -> Result<ScheduleRow, StoreError> {
        // Read first: the scheduler asks every few seconds, and a write would sync each time.
        let known = self.read("read a schedule", |c| {
            c.query_row(
                &format!("SELECT {SCHEDULE_COLUMNS} FROM schedule_state WHERE app = ?1 AND name = ?2"),
                params![app, name],
                schedule_row,
            )
            .optional()
        })?;
        if let Some(row) = known {
            return Ok(row);
        }
        self.write("register a schedule", |tx| {
            tx.execute(
                "INSERT OR IGNORE INTO schedule_state (app, name, registered_at) VALUES (?1, ?2, ?3)",
                params![app, name, to_millis(now)],
            )?;
            Ok(tx.query_row(
                &format!("SELECT {SCHEDULE_COLUMNS} FROM schedule_state WHERE app = ?1 AND name = ?2"),
                params![app, name],
                schedule_row,
            )?)
        })
    }

    pub fn schedules(&self) -> Result<Vec<ScheduleRow>, StoreError> {
        self.read("read the schedules", |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {SCHEDULE_COLUMNS} FROM schedule_state ORDER BY app, name"
            ))?;
            let rows = stmt.query_map([], schedule_row)?;
            rows.collect()
        })
    }

    pub fn schedule_ran(
        &self,
        app: &str,
        name: &str,
        at: Timestamp,
        ok: bool,
        message: &str,
        duration_ms: u64,
    ) -> Result<(), StoreError> {
        self.write("record a scheduled run", |tx| {
            tx.execute(
                "UPDATE schedule_state SET last_run_at = ?3, last_ok = ?4, last_message = ?5, last_duration_ms = ?6
                 WHERE app = ?1 AND name = ?2",
                params![app, name, to_millis(at), ok, message, duration_ms as i64],
            )?;
            Ok(())
        })
    }

    /// Schedules the app no longer declares are dropped, so one declared again later starts
    /// fresh instead of running at once for the times it was absent.
    pub fn retain_schedules(&self, app: &str, names: &[String]) -> Result<(), StoreError> {
        let have: Vec<String> = self.read("read the schedules", |c| {
            let mut stmt = c.prepare("SELECT name FROM schedule_state WHERE app = ?1")?;
            stmt.query_map([app], |r| r.get(0))?.collect()
        })?;
        let gone: Vec<&String> = have.iter().filter(|n| !names.contains(n)).collect();
        if gone.is_empty() {
            return Ok(());
        }
        self.write("drop old schedules", |tx| {
            for n in gone {
                tx.execute(
                    "DELETE FROM schedule_state WHERE app = ?1 AND name = ?2",
                    params![app, n],
                )?;
            }
            Ok(())
        })
    }

    /// Saves (or, with `None`, ends) the state operation under way on `app`.
    pub fn save_state_op(&self, app: &str, json: Option<&str>) -> Result<(), StoreError> {
        self.write("save a state operation", |tx| {
            match json {
                Some(j) => tx.execute(
                    "INSERT INTO state_ops (app, json, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (app) DO UPDATE SET json = ?2, updated_at = ?3",
                    params![app, j, to_millis(Timestamp::now())],
                )?,
                None => tx.execute("DELETE FROM state_ops WHERE app = ?1", [app])?,
            };
            Ok(())
        })
    }

    pub fn state_op(&self, app: &str) -> Result<Option<String>, StoreError> {
        self.read("read a state operation", |c| {
            c.query_row("SELECT json FROM state_ops WHERE app = ?1", [app], |r| r.get(0))
                .optional()
        })
    }

    pub fn state_ops(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read("read the state operations", |c| {
            let mut stmt = c.prepare("SELECT app, json FROM state_ops ORDER BY app")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }
}

const SCHEDULE_COLUMNS: &str = "app, name, registered_at, last_run_at, last_ok, last_message, last_duration_ms";

fn schedule_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ScheduleRow> {
    Ok(ScheduleRow {
        app: r.get(0)?,
        name: r.get(1)?,
        registered_at: from_millis(2, r.get(2)?)?,
        last_run_at: r.get::<_, Option<i64>>(3)?.map(|m| from_millis(3, m)).transpose()?,
        last_ok: r.get(4)?,
        last_message: r.get(5)?,
        last_duration_ms: r.get::<_, Option<i64>>(6)?.map(|d| d as u64),
    })
}
