//! The deploy plan: what a new revision changes against the running one, service by service,
//! and the order of starts and stops a rolling update will go through. Pure: `zenith deploy
//! --dry-run` prints it, `zenith deploy` prints it before carrying it out.

use serde::{Deserialize, Serialize};
use zenith_spec::{AppSpec, ServiceSpec, UpdateStrategy};

use crate::rolling::{self, Counts};

mod timeline;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployPlan {
    pub app: String,
    pub from_revision: Option<u64>,
    pub to_revision: u64,
    pub services: Vec<ServicePlan>,
    /// Services of the running revision that the new one no longer has, stopped last.
    pub removed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePlan {
    pub service: String,
    pub action: Action,
    /// What changed in the service's spec (field names), empty for a new service.
    pub changes: Vec<String>,
    /// The rolling steps, one line each, in order.
    pub steps: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    Scale,
    Unchanged,
}

impl DeployPlan {
    pub fn is_noop(&self) -> bool {
        self.removed.is_empty() && self.services.iter().all(|s| s.action == Action::Unchanged)
    }
}

/// Plans `new` (to become revision `to`) against `old` (revision `from`, running now).
pub fn plan(old: Option<(&AppSpec, u64)>, new: &AppSpec, to: u64) -> DeployPlan {
    plan_with(old, new, to, false)
}

/// [`plan`] for `zenith deploy --force` too: canary and blue-green services switch at once.
pub fn plan_with(old: Option<(&AppSpec, u64)>, new: &AppSpec, to: u64, forced: bool) -> DeployPlan {
    let mut services = Vec::new();
    for svc in &new.services {
        let before = old.and_then(|(o, _)| o.service(&svc.name));
        services.push(plan_service(before, svc, old.map(|(_, n)| n), to, forced));
    }
    let removed = old
        .map(|(o, _)| {
            o.services
                .iter()
                .filter(|s| new.service(&s.name).is_none())
                .map(|s| s.name.clone())
                .collect()
        })
        .unwrap_or_default();
    DeployPlan {
        app: new.name.clone(),
        from_revision: old.map(|(_, n)| n),
        to_revision: to,
        services,
        removed,
    }
}

fn plan_service(
    before: Option<&ServiceSpec>,
    svc: &ServiceSpec,
    from: Option<u64>,
    to: u64,
    forced: bool,
) -> ServicePlan {
    let Some(before) = before else {
        return ServicePlan {
            service: svc.name.clone(),
            action: Action::Create,
            changes: Vec::new(),
            steps: vec![format!(
                "start {} replica(s) of r{to}, each joins the router once healthy",
                svc.replicas
            )],
        };
    };
    let changes = changed_fields(before, svc);
    if changes.is_empty() {
        return ServicePlan {
            service: svc.name.clone(),
            action: Action::Unchanged,
            changes,
            steps: Vec::new(),
        };
    }
    let progressive = timeline::steps(before, svc, from, to, forced);
    if changes == ["replicas"] && progressive.is_none() {
        let verb = if svc.replicas > before.replicas {
            "start"
        } else {
            "stop"
        };
        return ServicePlan {
            service: svc.name.clone(),
            action: Action::Scale,
            changes,
            steps: vec![format!(
                "{verb} {} replica(s): {} → {}",
                svc.replicas.abs_diff(before.replicas),
                before.replicas,
                svc.replicas
            )],
        };
    }
    ServicePlan {
        service: svc.name.clone(),
        action: Action::Update,
        changes,
        steps: match (progressive, &svc.update) {
            (Some(steps), _) => steps,
            (None, UpdateStrategy::Rolling(rolling)) => simulate(before.replicas, svc.replicas, rolling, to),
            (None, _) => Vec::new(),
        },
    }
}

/// The rolling steps as they happen when every new replica turns healthy at once.
fn simulate(old: u32, replicas: u32, r: &zenith_spec::Rolling, to: u64) -> Vec<String> {
    let mut c = Counts {
        old_total: old,
        old_ready: old,
        ..Counts::default()
    };
    let mut steps = Vec::new();
    for _ in 0..(old + replicas) * 2 + 2 {
        c.new_ready = c.new_total;
        let s = rolling::step(replicas, r, c);
        if s.is_empty() {
            break;
        }
        let mut parts = Vec::new();
        if s.stop_old > 0 {
            parts.push(format!("drain and stop {} old", s.stop_old));
        }
        if s.start_new > 0 {
            parts.push(format!("start {} of r{to} and wait until healthy", s.start_new));
        }
        if s.stop_new > 0 {
            parts.push(format!("stop {} surplus", s.stop_new));
        }
        let stop_ready = s.stop_old.saturating_sub(c.old_total - c.old_ready);
        c.old_total -= s.stop_old;
        c.old_ready -= stop_ready;
        c.new_total = c.new_total + s.start_new - s.stop_new;
        steps.push(format!(
            "{} → {} old, {} new",
            parts.join(", then "),
            c.old_total,
            c.new_total
        ));
    }
    steps
}

/// Names of the spec fields that differ, for the plan's "what changed" line.
fn changed_fields(a: &ServiceSpec, b: &ServiceSpec) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |name: &str, differs: bool| {
        if differs {
            out.push(name.to_string());
        }
    };
    check("runtime", a.runtime != b.runtime);
    check("image", a.image != b.image);
    check("command", a.command != b.command);
    check("workdir", a.workdir != b.workdir);
    check("replicas", a.replicas != b.replicas);
    check("env", a.env != b.env);
    check("secrets", a.secrets != b.secrets);
    check("state_dirs", a.state_dirs != b.state_dirs);
    check("port", a.port != b.port);
    check("health", a.health != b.health);
    check("restart", a.restart != b.restart);
    check("update", a.update != b.update);
    check("pre_stop", a.pre_stop != b.pre_stop);
    check("stop_grace", a.stop_grace != b.stop_grace);
    check("drain_timeout", a.drain_timeout != b.drain_timeout);
    out
}

impl std::fmt::Display for DeployPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.from_revision {
            Some(n) => writeln!(f, "{}: r{n} → r{}", self.app, self.to_revision)?,
            None => writeln!(f, "{}: new app, r{}", self.app, self.to_revision)?,
        }
        for s in &self.services {
            let action = match s.action {
                Action::Create => "create".to_string(),
                Action::Unchanged => "unchanged".to_string(),
                Action::Scale | Action::Update => format!("update ({})", s.changes.join(", ")),
            };
            writeln!(f, "  {}: {action}", s.service)?;
            for (i, step) in s.steps.iter().enumerate() {
                writeln!(f, "    {}. {step}", i + 1)?;
            }
        }
        for r in &self.removed {
            writeln!(f, "  {r}: remove (drain and stop every replica)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::time::Duration;

    use zenith_spec::{
        RestartCondition, RestartPolicy, Rolling, RuntimeKind, ServiceSpec, UpdateOrder, UpdateStrategy,
    };

    use super::*;

    fn service(name: &str, replicas: u32, version: &str) -> ServiceSpec {
        ServiceSpec {
            name: name.into(),
            runtime: RuntimeKind::Process,
            image: None,
            command: vec!["./server".into()],
            workdir: PathBuf::from("/srv"),
            replicas,
            env: BTreeMap::from([("VERSION".into(), version.into())]),
            secrets: BTreeMap::new(),
            state_dirs: Vec::new(),
            state: Default::default(),
            port: None,
            container: Default::default(),
            health: None,
            restart: RestartPolicy {
                condition: RestartCondition::Any,
                delay: Duration::from_secs(5),
                max_attempts: None,
                window: None,
            },
            update: UpdateStrategy::Rolling(Rolling {
                max_surge: 1,
                max_unavailable: 0,
                order: UpdateOrder::StartFirst,
                progress_deadline: Duration::from_secs(60),
            }),
            pre_stop: None,
            stop_grace: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(30),
        }
    }

    fn app(services: Vec<ServiceSpec>) -> AppSpec {
        AppSpec {
            name: "shop".into(),
            revision_history_limit: 10,
            services,
            schedules: Vec::new(),
            drill: None,
            health: Default::default(),
        }
    }

    #[test]
    fn a_new_app_creates_every_service() {
        let p = plan(None, &app(vec![service("web", 2, "v1")]), 1);
        assert_eq!(p.services[0].action, Action::Create);
        assert_eq!(
            p.to_string(),
            "shop: new app, r1\n  web: create\n    1. start 2 replica(s) of r1, each joins the router once healthy\n"
        );
    }

    #[test]
    fn an_update_lists_changes_and_rolling_steps_in_order() {
        let old = app(vec![service("web", 2, "v1"), service("worker", 1, "v1")]);
        let new = app(vec![service("web", 2, "v2"), service("worker", 1, "v1")]);
        let p = plan(Some((&old, 3)), &new, 4);
        assert_eq!(p.services[0].action, Action::Update);
        assert_eq!(p.services[0].changes, vec!["env"]);
        assert_eq!(
            p.services[0].steps,
            vec![
                "start 1 of r4 and wait until healthy → 2 old, 1 new",
                "drain and stop 1 old → 1 old, 1 new",
                "start 1 of r4 and wait until healthy → 1 old, 2 new",
                "drain and stop 1 old → 0 old, 2 new",
            ]
        );
        assert_eq!(p.services[1].action, Action::Unchanged);
        assert!(!p.is_noop());
    }

    fn canary(svc: &mut ServiceSpec) {
        svc.port = Some(8080);
        svc.update = UpdateStrategy::Canary(zenith_spec::Canary {
            steps: [10, 50, 100]
                .map(|weight| zenith_spec::CanaryStep { weight, pause: None })
                .to_vec(),
            analysis: zenith_spec::Analysis {
                interval: Duration::from_secs(10),
                min_requests: 50,
                max_error_rate: 5.0,
                max_p95: Some(Duration::from_millis(500)),
                max_p99: None,
                score: None,
                failure_limit: 1,
                success_count: 2,
                quiet_timeout: Duration::from_secs(300),
                on_quiet: zenith_spec::OnQuiet::Pause,
            },
            probes: Vec::new(),
            progress_deadline: Duration::from_secs(60),
        });
    }

    #[test]
    fn a_canary_update_prints_its_whole_timeline() {
        let mut old = app(vec![service("web", 4, "v1")]);
        canary(&mut old.services[0]);
        let mut new = old.clone();
        new.services[0].env.insert("VERSION".into(), "v2".into());
        new.services[0].update = old.services[0].update.clone();
        if let UpdateStrategy::Canary(c) = &mut new.services[0].update {
            c.steps[1].pause = Some(zenith_spec::Pause::Manual);
        }
        let p = plan(Some((&old, 3)), &new, 4);
        assert_eq!(
            p.services[0].steps,
            vec![
                "start 1 replica(s) of r4 beside r3's 4 (no traffic yet) and wait until healthy (deadline 1m)",
                "step 1/3: 10% of traffic to r4; 2 passing check(s) to go on",
                "step 2/3: 50% of traffic to r4 (after scaling r4 to 2 replica(s)); 2 passing check(s) to go on; \
                 then hold until `zenith rollout promote`",
                "step 3/3: 100% of traffic to r4 (after scaling r4 to 4 replica(s)); 2 passing check(s) to go on",
                "drain and stop r3's 4 replica(s)",
                "checks: every 10s: error rate ≤ 5%, p95 ≤ 500 ms; a verdict needs 50 requests \
                 (a check without them for 5m pauses the rollout)",
                "abort on failed check 1: traffic back to r3 at once, r4 stopped",
                "clients keep the revision they first got (cookie) until the rollout ends; \
                 `X-Zenith-Version: canary` reaches r4 at any step",
            ]
        );
        let forced = plan_with(Some((&old, 3)), &new, 4, true);
        assert_eq!(
            forced.services[0].steps,
            vec![
                "forced: start 4 replica(s) of r4 beside r3's 4 and wait until healthy (no steps, no analysis)",
                "all traffic to r4 at once; drain and stop r3",
            ]
        );
    }

    #[test]
    fn scaling_removal_and_no_change() {
        let old = app(vec![service("web", 2, "v1"), service("cron", 1, "v1")]);
        let new = app(vec![service("web", 5, "v1")]);
        let p = plan(Some((&old, 1)), &new, 2);
        assert_eq!(p.services[0].action, Action::Scale);
        assert_eq!(p.services[0].steps, vec!["start 3 replica(s): 2 → 5"]);
        assert_eq!(p.removed, vec!["cron"]);
        assert!(p.to_string().contains("cron: remove"));
        assert!(plan(Some((&new, 2)), &new, 3).is_noop());
    }
}
