//! The app's status as `zenith app status` and the API show it (its rollout included), rebuilt
//! from the controller's state after every message and published on a watch channel when it
//! changed.

use super::Controller;
use super::progress::RolloutRecord;
use crate::progressive::Strategy;
use crate::status::{AppStatus, ReplicaState, ReplicaStatus, RolloutStatus, ServiceRollout, ServiceStatus};

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

    /// A rollout as `rollout status` shows it: the machine's state with the thresholds and the
    /// live figures of both revisions.
    pub(super) fn rollout_status_of(&self, record: &RolloutRecord) -> RolloutStatus {
        let spec = self.specs.get(&record.revision);
        RolloutStatus {
            revision: record.revision,
            stable: record.stable,
            forced: record.forced,
            services: record
                .services
                .iter()
                .map(|(name, progress)| {
                    let svc = spec.and_then(|s| s.service(name));
                    let strategy = svc.and_then(|s| Strategy::of(&s.update, record.forced));
                    ServiceRollout {
                        service: name.clone(),
                        progress: progress.clone(),
                        steps: match svc.map(|s| &s.update) {
                            Some(zenith_spec::UpdateStrategy::Canary(c)) if !record.forced => {
                                c.steps.iter().map(|s| s.weight).collect()
                            }
                            _ => vec![100],
                        },
                        analysis: strategy.and_then(|s| s.analysis()).cloned(),
                        live: self.windows.live.get(name).cloned().unwrap_or_default(),
                    }
                })
                .collect(),
        }
    }
}
