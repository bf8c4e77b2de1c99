//! What the demo found, phase by phase: filled in as the story goes (so a run that stops
//! half-way still reports what happened), printed as a short summary on stderr and, with
//! `--output-format json`, as one JSON line on stdout that scripts and the tests read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;
use zenith_rollout::analysis::Verdict;
use zenith_rollout::progressive::Stage;

use super::follow::Outcome;
use super::sandbox::Interrupted;
use super::traffic::Counts;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// The story went as expected: v2 completed, v3 was caught and rolled back.
    pub ok: bool,
    /// Why not, when it did not.
    pub error: Option<String>,
    pub interrupted: bool,
    pub secs: f64,
    /// How v3 was bad: `errors` or `latency`.
    pub bad: String,
    /// The demo app's public address (zenith's router).
    pub url: String,
    pub dir: PathBuf,
    /// Whether `dir` was left in place (`--keep`, or a failed run).
    pub kept: bool,
    pub daemon_log: PathBuf,
    pub daemon_pid: Option<u32>,
    /// Replica processes seen during the run, and those still running after the daemon
    /// stopped (a bug when not empty).
    pub replica_pids: BTreeSet<u32>,
    pub left_running: Vec<u32>,
    /// What the clients saw over the whole run.
    pub requests: u64,
    pub failed: u64,
    pub v1: Phase,
    /// Warm-up traffic, all on v1.
    pub before: Phase,
    pub v2: Phase,
    pub v3: Phase,
    /// The traffic after v3's rollback, all on v2 again.
    pub after: Phase,
}

/// One deploy (or a stretch of traffic between deploys).
#[derive(Debug, Default, Serialize)]
pub struct Phase {
    pub revision: Option<u64>,
    /// How the revision ended: `complete`, `failed`, ...
    pub result: Option<String>,
    /// The canary was aborted and all traffic went back to the previous revision.
    pub rolled_back: bool,
    pub abort: Option<Abort>,
    pub secs: f64,
    pub requests: u64,
    pub failed: u64,
    pub slow: u64,
    pub versions: BTreeMap<String, u64>,
    pub failed_by: BTreeMap<String, u64>,
    /// Client failures by the new revision's traffic weight (percent) at the time.
    pub failed_at_weight: BTreeMap<u32, u64>,
}

/// Why zenith stopped a canary: the failing check's metric against its threshold.
#[derive(Debug, Serialize)]
pub struct Abort {
    pub reason: String,
    pub metric: Option<String>,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub weight: Option<u32>,
}

impl Phase {
    /// The clients' view of the phase.
    pub fn traffic(&mut self, c: &Counts, secs: f64) {
        self.secs = secs;
        self.requests = c.sent;
        self.failed = c.failed;
        self.slow = c.slow;
        self.versions = c.versions.clone();
        self.failed_by = c.failed_by.clone();
    }

    /// How revision `revision` ended, from the daemon's status.
    pub fn outcome(&mut self, revision: u64, o: &Outcome) {
        self.revision = Some(revision);
        self.result = Some(o.status.as_str().to_string());
        self.failed_at_weight = o.failed_at_weight.clone();
        let Some(svc) = o.rollout(revision).and_then(|r| r.services.first()) else {
            return;
        };
        let p = &svc.progress;
        if p.stage != Stage::Aborted {
            return;
        }
        self.rolled_back = o.summary.status.active_revision != Some(revision);
        let check = p
            .checks
            .iter()
            .rev()
            .find(|c| matches!(c.verdict, Verdict::Fail { .. }));
        let (metric, value, threshold, weight) = match check.map(|c| (&c.verdict, c.weight)) {
            Some((
                Verdict::Fail {
                    metric,
                    value,
                    threshold,
                    ..
                },
                weight,
            )) => (Some(metric.clone()), Some(*value), Some(*threshold), Some(weight)),
            _ => (None, None, None, None),
        };
        self.abort = Some(Abort {
            reason: p.reason.clone().unwrap_or_else(|| o.message(revision)),
            metric,
            value,
            threshold,
            weight,
        });
    }

    fn words(&self, name: &str) -> String {
        let mut s = format!("{name:<7}");
        match (&self.revision, &self.result) {
            (Some(r), Some(res)) => s.push_str(&format!("r{r} {res:<11}")),
            _ => s.push_str(&format!("{:<14}", "")),
        }
        s.push_str(&format!(
            " {:>5.1}s  {:>6} requests  {:>4} failed",
            self.secs, self.requests, self.failed
        ));
        if self.slow > 0 {
            s.push_str(&format!("  {:>4} slow", self.slow));
        }
        if self.rolled_back {
            s.push_str("  (rolled back)");
        }
        s
    }
}

impl Report {
    /// Sets the verdict once the run is over: as expected, or why not.
    pub fn conclude(&mut self, result: &anyhow::Result<()>, secs: f64) {
        self.secs = secs;
        self.interrupted = result
            .as_ref()
            .is_err_and(|e| e.downcast_ref::<Interrupted>().is_some());
        let expected = self.v2.result.as_deref() == Some("complete") && self.v3.rolled_back;
        self.error = match result {
            Err(e) => Some(format!("{e:#}")),
            Ok(()) if !self.left_running.is_empty() => Some(format!(
                "replicas still running after the daemon stopped (a bug): pids {:?}",
                self.left_running
            )),
            Ok(()) if !expected => Some("the story did not go as expected".into()),
            Ok(()) => None,
        };
        self.ok = self.error.is_none();
    }

    /// The summary on stderr.
    pub fn text(&self) -> String {
        let mut lines = vec!["summary (what the clients saw):".to_string()];
        for (name, p) in [
            ("v1", &self.v1),
            ("warm-up", &self.before),
            ("v2", &self.v2),
            ("v3", &self.v3),
            ("after", &self.after),
        ] {
            // Phases a failed or interrupted run never reached say nothing.
            if p.revision.is_some() || p.requests > 0 {
                lines.push(format!("  {}", p.words(name)));
            }
        }
        lines.push(format!(
            "  total  {} requests, {} failed, in {:.1}s",
            self.requests, self.failed, self.secs
        ));
        lines.join("\n")
    }
}
