//! The demo's live view: follows a revision through the daemon's API until it ends, printing
//! each rollout step and verdict as it happens (the same lines as `zenith deploy`), replica
//! readiness, and once a second what the clients saw. Everything is a plain line on stderr,
//! prefixed with the time since the demo began, so a pasted run reads as a timeline.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::bail;
use zenith_rollout::{ReplicaState, RolloutStatus};
use zenith_server::api::apps::AppSummary;
use zenith_server::store::RevisionStatus;

use super::report::Phase;
use super::sandbox::Interrupt;
use super::spec::APP;
use super::traffic::{Counts, SLOW, Traffic};
use crate::client::Client;
use crate::commands::rollout_view::{RolloutSeen, rollout_lines};

/// How often the API is asked for the app's status.
const POLL: Duration = Duration::from_millis(250);
/// How often a traffic line is printed.
const TRAFFIC_LINE: Duration = Duration::from_secs(1);

/// Timestamped lines on stderr (none with `-q`).
pub struct Log {
    start: Instant,
    quiet: bool,
}

impl Log {
    pub fn new(quiet: bool) -> Log {
        Log {
            start: Instant::now(),
            quiet,
        }
    }

    pub fn say(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{:>5.1}s  {}", self.elapsed().as_secs_f64(), msg.as_ref());
        }
    }

    /// Lines of a block (a table), each indented under the current time.
    pub fn block(&self, text: &str) {
        if !self.quiet {
            for line in text.lines() {
                eprintln!("        {line}");
            }
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

/// How a followed revision ended.
pub struct Outcome {
    pub status: RevisionStatus,
    pub summary: AppSummary,
    /// Client failures seen while the new revision had each weight (percent).
    pub failed_at_weight: BTreeMap<u32, u64>,
    pub secs: f64,
}

impl Outcome {
    /// The rollout of `revision`, when it was a progressive one.
    pub fn rollout(&self, revision: u64) -> Option<&RolloutStatus> {
        self.summary.status.rollout.as_ref().filter(|r| r.revision == revision)
    }

    /// The revision's message in the history (why it failed).
    pub fn message(&self, revision: u64) -> String {
        let r = self.summary.revisions.iter().find(|r| r.number == revision);
        r.map(|r| r.message.clone()).unwrap_or_default()
    }
}

/// What the view needs: the API, the clock and lines, Ctrl-C, and the clients once started.
pub struct Watch<'a> {
    pub client: &'a Client,
    pub log: &'a Log,
    pub interrupt: &'a Interrupt,
    pub traffic: Option<Traffic>,
    /// Every replica pid seen, to check after the daemon stopped that none is left.
    pub pids: BTreeSet<u32>,
}

/// The clients' counts at a moment, to tell a phase's traffic from the rest.
pub struct Mark {
    counts: Counts,
    at: Instant,
}

impl<'a> Watch<'a> {
    pub fn new(client: &'a Client, log: &'a Log, interrupt: &'a Interrupt) -> Watch<'a> {
        Watch {
            client,
            log,
            interrupt,
            traffic: None,
            pids: BTreeSet::new(),
        }
    }

    fn counts(&self) -> Counts {
        self.traffic.as_ref().map(Traffic::counts).unwrap_or_default()
    }

    pub fn mark(&self) -> Mark {
        Mark {
            counts: self.counts(),
            at: Instant::now(),
        }
    }

    /// What the clients saw since `mark`, and over how many seconds.
    pub fn since(&self, mark: &Mark) -> (Counts, f64) {
        (self.counts().since(&mark.counts), mark.at.elapsed().as_secs_f64())
    }

    /// Follows `revision` until it completes or fails, or `timeout` passes.
    pub fn follow(&mut self, revision: u64, timeout: Duration) -> anyhow::Result<Outcome> {
        let start = Instant::now();
        let mut seen = RolloutSeen::default();
        let mut replicas = String::new();
        let mut ticker = Ticker::new(self.counts());
        let mut failed = ticker.last.failed;
        let mut failed_at_weight = BTreeMap::new();
        let mut last_weight = None;
        loop {
            self.interrupt.check()?;
            let s: AppSummary = self.client.get(&format!("/v1/apps/{APP}")).map_err(|f| f.error)?;
            let line = replicas_line(&s, revision, &mut self.pids);
            if line != replicas {
                self.log.say(format!("  {line}"));
                replicas = line;
            }
            let rollout = s.status.rollout.as_ref().filter(|r| r.revision == revision);
            let lines = rollout.map(|r| rollout_lines(r, &mut seen)).unwrap_or_default();
            for l in lines {
                self.log.say(format!("  {l}"));
            }
            let weight = rollout.and_then(|r| r.services.first()).map(|s| s.progress.weight);
            if let (Some(t), Some(w)) = (&self.traffic, weight) {
                // Failures since the last poll happened at the weight seen then or now. Weights
                // only grow until an abort drops them to 0, so the larger is the one that let
                // the failures through (the poll that first sees an abort reads 0 already).
                let now = t.counts().failed;
                if now > failed {
                    *failed_at_weight.entry(last_weight.unwrap_or(w).max(w)).or_default() += now - failed;
                }
                (failed, last_weight) = (now, Some(w));
            }
            let router = weight.map(|w| format!("   (router: r{revision} at {w}%)"));
            ticker.tick(self.traffic.as_ref(), self.log, router.as_deref().unwrap_or(""));
            let status = s.revisions.iter().find(|r| r.number == revision).map(|r| r.status);
            match status {
                Some(st) if st.is_final() => {
                    return Ok(Outcome {
                        status: st,
                        summary: s,
                        failed_at_weight,
                        secs: start.elapsed().as_secs_f64(),
                    });
                }
                None => bail!("r{revision} of {APP} is missing from the daemon's history"),
                _ => {}
            }
            if start.elapsed() > timeout {
                bail!("r{revision} of {APP} still rolls out after {}s", timeout.as_secs());
            }
            std::thread::sleep(POLL);
        }
    }

    /// Only the clients' view, for `d`: before a deploy, and after a rollback.
    pub fn soak(&mut self, d: Duration) -> anyhow::Result<()> {
        let mut ticker = Ticker::new(self.counts());
        let start = Instant::now();
        while start.elapsed() < d {
            self.interrupt.sleep(POLL)?;
            ticker.tick(self.traffic.as_ref(), self.log, "");
        }
        Ok(())
    }
}

/// How zenith caught v3: the metric, its value and the threshold, and what clients paid.
pub fn explain_abort(log: &Log, rev: u64, o: &Outcome, phase: &Phase) -> anyhow::Result<()> {
    let Some(abort) = phase.abort.as_ref().filter(|_| phase.rolled_back) else {
        bail!(
            "v3 should have been caught and rolled back, but r{rev} {}: {}",
            o.status.as_str(),
            o.message(rev)
        );
    };
    if let (Some(metric), Some(value), Some(threshold), Some(weight)) =
        (&abort.metric, abort.value, abort.threshold, abort.weight)
    {
        log.say(format!(
            "     caught at {weight}% of the traffic: {metric} measured {value:.1} against a limit of {threshold}; \
             r{rev} rolled back {:.1}s after its deploy",
            o.secs
        ));
    }
    log.say(format!("     reason: {}", abort.reason));
    let at: Vec<String> = phase
        .failed_at_weight
        .iter()
        .map(|(w, n)| format!("{n} at {w}%"))
        .collect();
    log.say(format!(
        "     clients saw {} of {} requests fail{} and {} answer slower than {} ms",
        phase.failed,
        phase.requests,
        if at.is_empty() {
            String::new()
        } else {
            format!(" ({})", at.join(", "))
        },
        phase.slow,
        SLOW.as_millis()
    ));
    if let Some(r) = o.rollout(rev) {
        log.say("     the rollout as `zenith rollout status demo` shows it:");
        log.block(&crate::commands::rollout_view::render(
            r,
            jiff::Timestamp::now().as_millisecond(),
        ));
    }
    Ok(())
}

/// `web: 1/2 replicas of r2 ready, 2 of older revisions`; notes the pids on the way.
fn replicas_line(s: &AppSummary, revision: u64, pids: &mut BTreeSet<u32>) -> String {
    let mut parts = Vec::new();
    for svc in &s.status.services {
        pids.extend(svc.replicas.iter().filter_map(|r| r.pid));
        let new = svc.replicas.iter().filter(|r| r.revision == revision);
        let ready = new.clone().filter(|r| r.state == ReplicaState::Ready).count();
        let old = svc.replicas.len() - new.count();
        let mut part = format!(
            "{}: {ready}/{} replicas of r{revision} ready",
            svc.name, svc.desired_replicas
        );
        if old > 0 {
            part.push_str(&format!(", {old} of older revisions"));
        }
        parts.push(part);
    }
    parts.join("; ")
}

/// Prints a traffic line about once a second, over what happened since the last one.
struct Ticker {
    last: Counts,
    at: Instant,
}

impl Ticker {
    fn new(last: Counts) -> Ticker {
        Ticker {
            last,
            at: Instant::now(),
        }
    }

    fn tick(&mut self, traffic: Option<&Traffic>, log: &Log, suffix: &str) {
        let Some(t) = traffic else { return };
        let secs = self.at.elapsed();
        if secs < TRAFFIC_LINE {
            return;
        }
        let now = t.counts();
        log.say(format!("  {}{suffix}", now.since(&self.last).line(secs.as_secs_f64())));
        (self.last, self.at) = (now, Instant::now());
    }
}
