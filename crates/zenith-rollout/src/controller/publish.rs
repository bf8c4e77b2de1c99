//! The app's status as `zenith app status` and the API show it, rebuilt from the controller's
//! state after every message and published on a watch channel when it changed.

use super::Controller;
use crate::status::{AppStatus, ReplicaState, ReplicaStatus, ServiceStatus};

impl Controller {
    pub(super) fn publish(&self) {
        let mut services = Vec::new();
        let names: Vec<String> = match &self.desired {
            Some((_, spec)) => spec.services.iter().map(|s| s.name.clone()).collect(),
            None => Vec::new(),
        };
        let mut all = names.clone();
        for r in self.replicas.values() {
            if !all.contains(&r.service) {
                all.push(r.service.clone());
            }
        }
        for name in all {
            let svc = self.desired.as_ref().and_then(|d| d.1.service(&name));
            let replicas: Vec<ReplicaStatus> = self
                .replicas
                .values()
                .filter(|r| r.service == name)
                .map(|r| ReplicaStatus {
                    id: r.id.clone(),
                    revision: r.revision,
                    state: r.state,
                    port: r.port,
                    pid: Some(r.record.pid),
                    restarts: r.restarts,
                    started_at_ms: r.started_at_ms,
                    last_probe: r.last_probe.clone(),
                })
                .collect();
            services.push(ServiceStatus {
                port: svc.and_then(|s| s.port),
                desired_replicas: svc.map(|s| s.replicas).unwrap_or(0),
                ready_replicas: replicas.iter().filter(|r| r.state == ReplicaState::Ready).count() as u32,
                replicas,
                events: self.events.get(&name).cloned().unwrap_or_default(),
                name,
            });
        }
        let status = AppStatus {
            app: self.app.clone(),
            desired_revision: self.desired_revision(),
            active_revision: self.active_revision(),
            phase: self.phase.clone(),
            message: self.message.clone(),
            services,
            rollout: match &self.rollout {
                Some(record) => Some(self.rollout_status_of(record)),
                None => self.finished_rollout.clone(),
            },
        };
        self.status_tx.send_if_modified(|s| {
            if *s == status {
                false
            } else {
                *s = status;
                true
            }
        });
    }
}
