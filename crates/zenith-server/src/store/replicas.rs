//! Replica records: what the supervisor started, so a restarted daemon can find (and adopt or
//! stop) the processes and containers its predecessor left running.
//!
//! The store treats `record_json` (the runtime's own handle: pid, container id, …) and `state`
//! as opaque; only the runtime knows their shape. A replica belongs to an app and disappears
//! with it; pruning keeps any revision that still has replicas recorded.

use jiff::Timestamp;
use rusqlite::{Row, params};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, from_millis, to_millis};

/// One running (or starting, or crashed) instance of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaRow {
    /// Unique across the host, chosen by the caller (e.g. `web-api-5-2`).
    pub id: String,
    pub app: String,
    pub service: String,
    pub revision: u64,
    /// The port the replica listens on, if the router sends it traffic.
    pub port: Option<u16>,
    /// The runtime's handle on the workload, as JSON.
    pub record_json: String,
    pub state: String,
    pub started_at: Option<Timestamp>,
    pub restarts: u32,
}

const COLUMNS: &str = "id, app, service, revision, port, record_json, state, started_at, restarts";

fn replica_row(row: &Row<'_>) -> rusqlite::Result<ReplicaRow> {
    Ok(ReplicaRow {
        id: row.get(0)?,
        app: row.get(1)?,
        service: row.get(2)?,
        revision: row.get(3)?,
        port: row.get(4)?,
        record_json: row.get(5)?,
        state: row.get(6)?,
        started_at: row.get::<_, Option<i64>>(7)?.map(|ms| from_millis(7, ms)).transpose()?,
        restarts: row.get(8)?,
    })
}

impl Store {
    /// Inserts the replica, or replaces the record with the same id. The app must exist.
    pub fn put_replica(&self, replica: &ReplicaRow) -> Result<(), StoreError> {
        self.write("record a replica", |tx| {
            let app_exists = tx
                .prepare_cached("SELECT 1 FROM apps WHERE name = ?1")?
                .exists([&replica.app])?;
            if !app_exists {
                return Err(StoreError::UnknownApp {
                    app: replica.app.clone(),
                }
                .into());
            }
            tx.execute(
                "INSERT INTO replicas (id, app, service, revision, port, record_json, state,
                                       started_at, restarts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (id) DO UPDATE SET
                     app = excluded.app, service = excluded.service,
                     revision = excluded.revision, port = excluded.port,
                     record_json = excluded.record_json, state = excluded.state,
                     started_at = excluded.started_at, restarts = excluded.restarts",
                params![
                    replica.id,
                    replica.app,
                    replica.service,
                    replica.revision,
                    replica.port,
                    replica.record_json,
                    replica.state,
                    replica.started_at.map(to_millis),
                    replica.restarts,
                ],
            )?;
            Ok(())
        })
    }

    /// Records a replica's state (`starting`, `ready`); `false` if there is no such replica.
    pub fn set_replica_state(&self, id: &str, state: &str) -> Result<bool, StoreError> {
        self.write("set a replica's state", |tx| {
            Ok(tx.execute("UPDATE replicas SET state = ?2 WHERE id = ?1", [id, state])? > 0)
        })
    }

    /// Forgets a replica. Returns `false` if there was no record with that id.
    pub fn remove_replica(&self, id: &str) -> Result<bool, StoreError> {
        self.write("remove a replica", |tx| {
            Ok(tx.execute("DELETE FROM replicas WHERE id = ?1", [id])? > 0)
        })
    }

    /// Every replica record, by app, service and id.
    pub fn replicas(&self) -> Result<Vec<ReplicaRow>, StoreError> {
        self.read("list replicas", |conn| {
            let sql = format!("SELECT {COLUMNS} FROM replicas ORDER BY app, service, id");
            conn.prepare(&sql)?.query_map([], replica_row)?.collect()
        })
    }

    /// The replica records of one app, by service and id; empty if the app does not exist.
    pub fn replicas_of(&self, app: &str) -> Result<Vec<ReplicaRow>, StoreError> {
        self.read("list an app's replicas", |conn| {
            let sql = format!("SELECT {COLUMNS} FROM replicas WHERE app = ?1 ORDER BY service, id");
            conn.prepare(&sql)?.query_map([app], replica_row)?.collect()
        })
    }
}
