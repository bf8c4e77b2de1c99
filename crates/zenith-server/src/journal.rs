//! The controllers' journal, written to the state store: which replicas run (so a restarted
//! daemon adopts them), and how each revision ended. A write that fails is logged; the
//! controller carries on, and the next start sweeps up replicas the store lost track of.

use zenith_rollout::{Journal, Outcome};

use crate::store::{ReplicaRow, RevisionStatus, Store};

pub struct StoreJournal {
    pub store: Store,
}

impl StoreJournal {
    fn log<T>(&self, what: &str, r: Result<T, crate::store::StoreError>) {
        if let Err(e) = r {
            tracing::error!(error = %e, "could not {what}");
        }
    }
}

impl Journal for StoreJournal {
    fn replica_started(&self, r: &zenith_rollout::ReplicaRow) {
        let row = ReplicaRow {
            id: r.id.clone(),
            app: r.app.clone(),
            service: r.service.clone(),
            revision: r.revision,
            port: Some(r.port),
            record_json: serde_json::to_string(&r.record).expect("records serialize"),
            state: if r.ready { "ready" } else { "starting" }.into(),
            started_at: jiff::Timestamp::from_millisecond(r.started_at_ms).ok(),
            restarts: r.restarts,
        };
        self.log("record a replica", self.store.put_replica(&row));
    }

    fn replica_ready(&self, id: &str) {
        self.log("record a ready replica", self.store.set_replica_state(id, "ready"));
    }

    fn replica_removed(&self, id: &str) {
        self.log("forget a replica", self.store.remove_replica(id));
    }

    fn revision_outcome(&self, app: &str, revision: u64, outcome: Outcome, message: &str) {
        match outcome {
            Outcome::Complete => {
                let previous = self.store.app(app).ok().flatten().and_then(|a| a.active_revision);
                if let Some(p) = previous.filter(|p| *p != revision) {
                    self.log(
                        "mark the previous revision superseded",
                        self.store.set_revision_status(app, p, RevisionStatus::Superseded, ""),
                    );
                }
                self.log(
                    "record a completed revision",
                    self.store
                        .set_revision_status(app, revision, RevisionStatus::Complete, message),
                );
                self.log("record the active revision", self.store.set_active(app, revision));
            }
            Outcome::Failed => self.log(
                "record a failed revision",
                self.store
                    .set_revision_status(app, revision, RevisionStatus::Failed, message),
            ),
        }
    }

    fn desired_changed(&self, app: &str, revision: u64) {
        self.log("record the desired revision", self.store.set_desired(app, revision));
    }

    fn rollout_saved(&self, app: &str, rollout: Option<&str>) {
        self.log("save the rollout's state", self.store.set_rollout(app, rollout));
    }
}

/// A stored replica as the controller adopts it; `None` for a record this build cannot read.
pub fn to_rollout_row(r: &ReplicaRow) -> Option<zenith_rollout::ReplicaRow> {
    Some(zenith_rollout::ReplicaRow {
        id: r.id.clone(),
        app: r.app.clone(),
        service: r.service.clone(),
        revision: r.revision,
        port: r.port?,
        record: serde_json::from_str(&r.record_json).ok()?,
        ready: r.state == "ready",
        restarts: r.restarts,
        started_at_ms: r.started_at.map(|t| t.as_millisecond()).unwrap_or(0),
    })
}
