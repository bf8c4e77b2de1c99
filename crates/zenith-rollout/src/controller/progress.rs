//! The controller's side of progressive rollouts (canary, blue-green, forced): it feeds each
//! service's [`Progress`] machine with what it observes (ready replicas, smoke tests, the
//! router's metrics for the window) and carries out the effects: weights and pins on the
//! router, smoke tests, the abort that puts all traffic back on the stable revision, and the
//! completion that retires it. The machine's state is journaled after every change, so a
//! restarted daemon resumes where this one stopped.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use zenith_router::Pins;
use zenith_spec::AppSpec;

use super::window::Windows;
use super::{Controller, Event};
use crate::progressive::{Effect, Observed, Progress, Stage, Strategy, UserCommand};
use crate::status::ReplicaState;

/// An app's progressive rollout as it is journaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutRecord {
    /// The revision being rolled out.
    pub revision: u64,
    /// The revision that serves until it completes, and takes all traffic back on abort.
    pub stable: u64,
    pub forced: bool,
    pub services: BTreeMap<String, Progress>,
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

impl Controller {
    /// Begins a progressive rollout of `revision` for every service that has a canary or
    /// blue-green strategy (any service, when `forced`) and replicas of another revision
    /// serving; other services roll as usual.
    pub(super) fn begin_rollout(&mut self, revision: u64, spec: &AppSpec, forced: bool) {
        self.rollout = None;
        self.windows = Windows::default();
        let Some(stable) = self.active_revision() else {
            return;
        };
        let now = now_ms();
        let mut services = BTreeMap::new();
        for svc in &spec.services {
            // The stable revision itself must be serving: it is what the weights fall back to.
            let serving = self
                .replicas
                .values()
                .any(|r| r.service == svc.name && r.revision == stable && r.state == ReplicaState::Ready);
            if let Some(strategy) = Strategy::of(&svc.update, forced).filter(|_| serving && svc.port.is_some()) {
                services.insert(svc.name.clone(), Progress::new(strategy, now));
            }
        }
        for service in services.keys() {
            // New replicas join the router as they turn healthy, but get nothing before the
            // rollout gives them a weight; testers can reach them with the pin header.
            if let Some((_, router)) = self.routers.get(service) {
                router.set_weights(Some(BTreeMap::from([(stable, 100)])));
                router.set_pins(Some(Pins {
                    stable: Some(stable),
                    canary: Some(revision),
                    sticky: false,
                }));
            }
        }
        if !services.is_empty() {
            self.rollout = Some(RolloutRecord {
                revision,
                stable,
                forced,
                services,
            });
        }
    }

    /// After adoption: the record of the previous daemon goes on if it is about the desired
    /// revision; the routers are new, so weights are set again.
    pub(super) fn resume_rollout(&mut self, record: RolloutRecord) {
        if self.desired_revision() != Some(record.revision) {
            return;
        }
        let now = now_ms();
        let mut record = record;
        let effects: Vec<(String, Vec<Effect>)> = record
            .services
            .iter_mut()
            .map(|(name, p)| (name.clone(), p.resume_after_restart(now)))
            .collect();
        tracing::info!(app = %self.app, revision = record.revision, "resuming the rollout");
        self.rollout = Some(record);
        for (service, effects) in effects {
            self.apply(&service, effects);
        }
    }

    /// One pass of the rollout of `service`; `true` when the service is done with it (the
    /// caller then treats the service like any other).
    pub(super) async fn drive_rollout(&mut self, service: &str, spec: &AppSpec) -> Option<bool> {
        let rollout = self.rollout.as_ref()?;
        let (rev, forced) = (rollout.revision, rollout.forced);
        let progress = rollout.services.get(service)?.clone();
        let svc = spec.service(service)?;
        let strategy = Strategy::of(&svc.update, forced)?;
        let new: Vec<&super::replica::Replica> = self
            .replicas
            .values()
            .filter(|r| r.service == service && r.revision == rev && r.state != ReplicaState::Stopping)
            .collect();
        let new_ready = new.iter().filter(|r| r.state == ReplicaState::Ready).count() as u32;
        let held = self.pending.iter().filter(|p| p.0 == service && p.1 == rev).count() as u32
            + self.given_up.get(&(service.to_string(), rev)).copied().unwrap_or(0);
        let wanted = progress.wanted_new(strategy, svc.replicas);
        let missing = wanted.saturating_sub(new.len() as u32 + held);
        if missing > 0 {
            // A step that needs more replicas gives them the whole deadline to get healthy,
            // however long the previous step took.
            self.progress_at = Instant::now();
        }
        let stalled = progress.stage != Stage::Done
            && new_ready < wanted
            && Instant::now() - self.progress_at > svc.update.progress_deadline();
        for _ in 0..missing {
            self.start_replica(service, rev, 0).await;
        }
        if stalled {
            let detail = self.last_failure.clone().map(|l| format!(" ({l})")).unwrap_or_default();
            let why = format!(
                "r{rev} failed: {service} not healthy after {}s without progress{detail}",
                svc.update.progress_deadline().as_secs()
            );
            self.abort_rollout(rev, why);
            return Some(false);
        }
        let obs = Observed {
            now_ms: now_ms(),
            new_ready,
            probes: self.windows.probes.remove(service),
            sample: self.window_sample(service, rev),
        };
        let mut progress = progress;
        let effects = progress.advance(strategy, svc.replicas, &obs);
        let done = progress.stage == Stage::Done;
        if let Some(r) = self.rollout.as_mut() {
            r.services.insert(service.to_string(), progress);
        }
        self.apply(service, effects);
        Some(done && self.rollout.is_some())
    }

    /// Carries out what the machine decided for `service`.
    pub(super) fn apply(&mut self, service: &str, effects: Vec<Effect>) {
        let Some((rev, stable, canary)) = self.rollout.as_ref().map(|r| {
            let canary = r.services.get(service).is_some_and(|p| p.strategy == "canary");
            (r.revision, r.stable, canary)
        }) else {
            return;
        };
        for effect in effects {
            match effect {
                Effect::SetWeight(w) => {
                    if let Some((_, router)) = self.routers.get(service) {
                        let weights = BTreeMap::from([(stable, 100 - w.min(100)), (rev, w)]);
                        router.set_weights(Some(weights));
                        router.set_pins(Some(Pins {
                            stable: Some(stable),
                            canary: Some(rev),
                            sticky: canary,
                        }));
                    }
                    self.event(service, format!("r{rev} gets {w}% of the traffic"));
                }
                Effect::ResetWindow => self.reset_window(service),
                Effect::RunProbes => self.run_smoke_tests(service, rev),
                Effect::Abort(reason) => self.abort_rollout(rev, reason),
                Effect::Complete => {
                    let old: Vec<String> = self
                        .replicas
                        .values()
                        .filter(|r| r.service == service && r.revision != rev)
                        .map(|r| r.id.clone())
                        .collect();
                    for id in old {
                        self.stop_replica(&id);
                    }
                    if let Some((_, router)) = self.routers.get(service) {
                        router.set_weights(None);
                        router.set_pins(None);
                    }
                    self.event(
                        service,
                        format!("r{rev} has all traffic; r{stable} is drained and stopped"),
                    );
                }
            }
        }
    }

    /// Puts all traffic back on the stable revision at once, stops the new replicas and fails
    /// the revision. The stable revision is not judged again: it simply keeps serving.
    pub(super) fn abort_rollout(&mut self, rev: u64, reason: String) {
        let Some(mut record) = self.rollout.take() else {
            self.fail_update(rev, reason);
            return;
        };
        // Services still in their rollout kept the stable revision at full size: traffic goes
        // back to it at once and the new replicas stop. A service whose rollout was done has
        // only new replicas left; the fallback's rolling pass replaces them, stable ones first.
        let mut live = Vec::new();
        for (service, progress) in record.services.iter_mut() {
            // (A service's machine may have marked itself aborted already: that is the abort.)
            if progress.stage == Stage::Done {
                continue;
            }
            progress.stage = Stage::Aborted;
            progress.reason = Some(reason.clone());
            progress.weight = 0;
            if let Some((_, router)) = self.routers.get(service) {
                router.set_weights(Some(BTreeMap::from([(record.stable, 100)])));
                router.set_pins(None);
            }
            live.push(service.clone());
        }
        let new: Vec<String> = self
            .replicas
            .values()
            .filter(|r| r.revision == rev && live.contains(&r.service))
            .map(|r| r.id.clone())
            .collect();
        for id in new {
            self.stop_replica(&id);
        }
        for service in &live {
            if let Some((_, router)) = self.routers.get(service) {
                router.set_weights(None);
            }
        }
        tracing::warn!(app = %self.app, revision = rev, reason = %reason, "rollout aborted, traffic back on r{}", record.stable);
        self.finished_rollout = Some(self.rollout_status_of(&record));
        self.fail_update(rev, reason);
    }

    /// Journals the rollout when it changed since the last write.
    pub(super) fn save_rollout(&mut self) {
        let json = self
            .rollout
            .as_ref()
            .map(|r| serde_json::to_string(r).expect("rollout records serialize"));
        if json != self.windows.saved {
            self.env.journal.rollout_saved(&self.app, json.as_deref());
            self.windows.saved = json;
        }
    }

    /// The rollout ended well: keep its record for `rollout status` and stop journaling it.
    pub(super) fn finish_rollout(&mut self) {
        if let Some(record) = self.rollout.take() {
            self.finished_rollout = Some(self.rollout_status_of(&record));
        }
    }

    /// `zenith rollout promote|pause|resume|abort`.
    pub(super) fn rollout_command(&mut self, cmd: UserCommand) -> Result<String, String> {
        let Some(record) = self.rollout.clone() else {
            return Err(format!(
                "{} has no canary or blue-green rollout in progress (`zenith rollout status {}` shows the last one)",
                self.app, self.app
            ));
        };
        let Some((_, spec)) = self.desired.clone() else {
            return Err("no desired revision".into());
        };
        let now = now_ms();
        let mut results = Vec::new();
        for (service, mut progress) in record.services {
            let Some(strategy) = spec
                .service(&service)
                .and_then(|s| Strategy::of(&s.update, record.forced))
            else {
                continue;
            };
            if progress.is_finished() {
                continue;
            }
            match progress.command(strategy, &cmd, now) {
                Ok(effects) => {
                    if let Some(r) = self.rollout.as_mut() {
                        r.services.insert(service.clone(), progress);
                    }
                    self.apply(&service, effects);
                    results.push(Ok(service));
                }
                Err(e) => results.push(Err(format!("{service}: {e}"))),
            }
        }
        let errors: Vec<String> = results.iter().filter_map(|r| r.clone().err()).collect();
        if results.iter().any(Result::is_ok) {
            let done = match cmd {
                UserCommand::Promote { full: true } => "promoted to 100%",
                UserCommand::Promote { full: false } => "promoted past the current step",
                UserCommand::Pause => "paused at its current weight",
                UserCommand::Resume => "resumed with a fresh check window",
                UserCommand::Abort => "aborted; all traffic is back on the stable revision",
            };
            Ok(format!(
                "rollout of r{} {done} (r{} is stable)",
                record.revision, record.stable
            ))
        } else {
            Err(errors.join("; "))
        }
    }

    /// Sends the smoke tests to every ready new replica of `service` on a side task.
    fn run_smoke_tests(&mut self, service: &str, rev: u64) {
        let Some(probes) = self.specs.get(&rev).and_then(|s| s.service(service)).map(|s| {
            Strategy::of(&s.update, false)
                .map(|st| st.probes().to_vec())
                .unwrap_or_default()
        }) else {
            return;
        };
        let targets: Vec<(String, u16)> = self
            .replicas
            .values()
            .filter(|r| r.service == service && r.revision == rev && r.state == ReplicaState::Ready)
            .map(|r| (r.id.clone(), r.port))
            .collect();
        let events = self.events_tx.clone();
        let service = service.to_string();
        tokio::spawn(async move {
            let mut result = match targets.is_empty() {
                true => Err("no ready replica of the new revision to test".to_string()),
                false => Ok(()),
            };
            'all: for (id, port) in targets {
                for probe in &probes {
                    if let Err(e) = crate::smoke::run(port, probe).await {
                        result = Err(format!("replica {id}: GET {}: {e}", probe.path));
                        break 'all;
                    }
                }
            }
            let _ = events.send(Event::Smoke {
                service,
                revision: rev,
                result,
            });
        });
    }
}
