//! The daemon's scheduler: for every app, its `[schedules.TYPE]` snapshot jobs (each followed
//! by its retention), their integrity checks, its restore drill; and the repository-wide prune.
//! When jobs are due comes from [`zenith_spec::cron::due`], a pure function: a daemon that was
//! down across several scheduled times runs a job once when it comes back, never a burst.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use zenith_snapshot::forget::{GroupBy, Keep, KeepDuration, KeepPolicy, apply_policy};
use zenith_snapshot::progress::NoProgress;
use zenith_snapshot::prune::{PruneOptions, prune};
use zenith_snapshot::verify::{ReadData, verify};
use zenith_spec::cron::{Cron, due};
use zenith_spec::{AppSpec, Retention, Schedule};

use super::{PRE_RESTORE, SCHEDULED, Snapshots, Take, new_set_id, tag};
use crate::api::Shared;
use crate::store::SnapshotRun;

/// How often the scheduler looks at the clock.
const TICK: Duration = Duration::from_secs(15);

/// The app name of daemon-wide jobs (prune) in the schedule table.
pub const DAEMON: &str = "";

/// One job of one app, as `zenith schedule list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub app: String,
    /// `TYPE` (snapshots), `TYPE/verify`, `drill` or `prune`.
    pub name: String,
    pub job: String,
    pub cron: String,
    pub timezone: String,
    pub next: Option<Timestamp>,
    pub last_run_at: Option<Timestamp>,
    pub last_ok: Option<bool>,
    pub last_message: String,
    pub last_seconds: Option<f64>,
}

#[derive(Debug, Clone)]
enum Job {
    Snapshot(Schedule),
    Verify(Schedule),
    Drill,
    Prune,
}

impl Job {
    fn kind(&self) -> &'static str {
        match self {
            Job::Snapshot(_) => "snapshot",
            Job::Verify(_) => "verify",
            Job::Drill => "drill",
            Job::Prune => "prune",
        }
    }
}

struct Planned {
    app: String,
    name: String,
    job: Job,
    cron: String,
    tz_name: Option<String>,
}

/// The jobs the apps' desired revisions declare, and the daemon's prune.
fn planned(specs: &[AppSpec], prune_cron: &str) -> Vec<Planned> {
    let mut out = Vec::new();
    for spec in specs {
        for s in &spec.schedules {
            out.push(Planned {
                app: spec.name.clone(),
                name: s.snapshot_type.clone(),
                job: Job::Snapshot(s.clone()),
                cron: s.cron.clone(),
                tz_name: s.timezone.clone(),
            });
            if let Some(v) = &s.verify {
                out.push(Planned {
                    app: spec.name.clone(),
                    name: format!("{}/verify", s.snapshot_type),
                    job: Job::Verify(s.clone()),
                    cron: v.cron.clone(),
                    tz_name: s.timezone.clone(),
                });
            }
        }
        if let Some(d) = &spec.drill {
            out.push(Planned {
                app: spec.name.clone(),
                name: "drill".into(),
                job: Job::Drill,
                cron: d.cron.clone(),
                tz_name: d.timezone.clone(),
            });
        }
    }
    out.push(Planned {
        app: DAEMON.into(),
        name: "prune".into(),
        job: Job::Prune,
        cron: prune_cron.to_string(),
        tz_name: None,
    });
    out
}

fn zone(name: Option<&str>) -> TimeZone {
    name.and_then(|n| TimeZone::get(n).ok())
        .unwrap_or_else(TimeZone::system)
}

/// The desired revision's spec of every app.
pub fn desired_specs(s: &Shared) -> Vec<AppSpec> {
    let Ok(apps) = s.store.apps() else {
        return Vec::new();
    };
    apps.iter()
        .filter_map(|a| {
            let rev = s.store.revision(&a.name, a.desired_revision?).ok()??;
            serde_json::from_str(&rev.spec_json).ok()
        })
        .collect()
}

/// Every job with its next and last run.
pub fn list(s: &Shared) -> Vec<JobView> {
    let now = Timestamp::now();
    let specs = desired_specs(s);
    let rows = s.store.schedules().unwrap_or_default();
    planned(&specs, &s.prune_cron)
        .into_iter()
        .map(|p| {
            let tz = zone(p.tz_name.as_deref());
            let row = rows.iter().find(|r| r.app == p.app && r.name == p.name);
            let next = Cron::parse(&p.cron).ok().and_then(|c| {
                let since = row.map(|r| r.since()).unwrap_or(now);
                let d = due(&c, &tz, since, now);
                if d.run_now { Some(now) } else { d.next }
            });
            JobView {
                app: p.app.clone(),
                name: p.name.clone(),
                job: p.job.kind().into(),
                cron: p.cron.clone(),
                timezone: p
                    .tz_name
                    .clone()
                    .unwrap_or_else(|| tz.iana_name().unwrap_or("local").to_string()),
                next,
                last_run_at: row.and_then(|r| r.last_run_at),
                last_ok: row.and_then(|r| r.last_ok),
                last_message: row.map(|r| r.last_message.clone()).unwrap_or_default(),
                last_seconds: row.and_then(|r| r.last_duration_ms).map(|d| d as f64 / 1000.0),
            }
        })
        .collect()
}

/// Runs forever: every tick, each due job once, one after another; and keeps the health and
/// the job list that `/metrics` shows fresh.
pub async fn run(s: Shared) {
    let mut last_health: Option<Instant> = None;
    loop {
        let ran = tick(&s).await;
        if ran || last_health.is_none_or(|t| t.elapsed() >= HEALTH_EVERY) {
            if let Err(e) = super::refresh_health(&s).await {
                tracing::warn!(error = %e, "cannot assess snapshot health");
            }
            last_health = Some(Instant::now());
        }
        let s2 = s.clone();
        if let Ok(jobs) = tokio::task::spawn_blocking(move || list(&s2)).await {
            *s.schedules.write().unwrap_or_else(|e| e.into_inner()) = jobs;
        }
        tokio::time::sleep(TICK).await;
    }
}

/// How often health is recomputed when no job ran (ages grow on their own).
const HEALTH_EVERY: Duration = Duration::from_secs(60);

/// Runs the due jobs; true when any ran.
async fn tick(s: &Shared) -> bool {
    let mut ran = false;
    let specs = desired_specs(s);
    let plans = planned(&specs, &s.prune_cron);
    for spec in &specs {
        let names: Vec<String> = plans
            .iter()
            .filter(|p| p.app == spec.name)
            .map(|p| p.name.clone())
            .collect();
        if let Err(e) = s.store.retain_schedules(&spec.name, &names) {
            tracing::warn!(error = %e, "could not tidy the schedules");
        }
    }
    for p in plans {
        let now = Timestamp::now();
        let Ok(cron) = Cron::parse(&p.cron) else {
            continue;
        };
        let row = match s.store.schedule(&p.app, &p.name, now) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a schedule");
                continue;
            }
        };
        let d = due(&cron, &zone(p.tz_name.as_deref()), row.since(), now);
        if !d.run_now {
            continue;
        }
        // The app's state is being replaced: a snapshot now could catch a directory in the
        // middle of its swap. The job stays due and runs once the operation has ended.
        if !p.app.is_empty() && s.store.state_op(&p.app).ok().flatten().is_some() {
            continue;
        }
        if d.missed > 1 {
            tracing::info!(app = %p.app, job = %p.name, missed = d.missed, "the daemon was down across several runs of this job; running it once now");
        }
        ran = true;
        let started = Instant::now();
        let result = run_job(s, &p, &specs).await;
        let (ok, message) = match &result {
            Ok(m) => (true, m.clone()),
            Err(e) => (false, e.clone()),
        };
        if ok {
            tracing::info!(app = %p.app, job = %p.name, %message, "scheduled job done");
        } else {
            tracing::warn!(app = %p.app, job = %p.name, %message, "scheduled job failed");
        }
        let ms = started.elapsed().as_millis() as u64;
        if let Err(e) = s.store.schedule_ran(&p.app, &p.name, now, ok, &message, ms) {
            tracing::error!(error = %e, "cannot record a scheduled run");
        }
    }
    ran
}

async fn run_job(s: &Shared, p: &Planned, specs: &[AppSpec]) -> Result<String, String> {
    let spec = specs.iter().find(|x| x.name == p.app).cloned();
    let sn = s.snapshots.clone();
    match (&p.job, spec) {
        (Job::Snapshot(sched), Some(spec)) => {
            let active = s.store.app(&p.app).ok().flatten().and_then(|a| a.active_revision);
            let protected = protected_sets(s, &p.app);
            let sched = sched.clone();
            blocking(move || snapshot_job(&sn, &spec, &sched, active, &protected)).await
        }
        (Job::Verify(sched), Some(spec)) => {
            let sched = sched.clone();
            blocking(move || verify_job(&sn, &spec.name, &sched)).await
        }
        (Job::Drill, Some(_)) => {
            let report = super::drill::run(s, &p.app, "latest").await;
            if report.ok {
                Ok(report.summary())
            } else {
                Err(report.summary())
            }
        }
        (Job::Prune, _) => blocking(move || prune_job(&sn)).await,
        (_, None) => Err(format!("app {} has no spec", p.app)),
    }
}

async fn blocking(f: impl FnOnce() -> Result<String, String> + Send + 'static) -> Result<String, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("the job's task failed: {e}"))?
}

/// Snapshot sets that revisions in the app's history record: retention never removes them,
/// so `rollback --with-state` to any revision kept can find its state.
fn protected_sets(s: &Shared, app: &str) -> Vec<String> {
    s.store
        .revisions(app)
        .map(|revs| revs.into_iter().filter_map(|r| r.snapshot_id).collect())
        .unwrap_or_default()
}

fn snapshot_job(
    sn: &Snapshots,
    spec: &AppSpec,
    sched: &Schedule,
    revision: Option<u64>,
    protected: &[String],
) -> Result<String, String> {
    let set = new_set_id(&spec.name, &sched.snapshot_type);
    let mut taken = Vec::new();
    for name in &sched.services {
        let Some(svc) = spec.service(name) else { continue };
        taken.extend(sn.take(&Take {
            app: &spec.name,
            service: name,
            dirs: &svc.state_dirs,
            kind: &sched.snapshot_type,
            reason: SCHEDULED,
            revision,
            set: &set,
        })?);
    }
    let bytes: u64 = taken.iter().map(|t| t.bytes).sum();
    let added: u64 = taken.iter().map(|t| t.added).sum();
    let mut msg = format!(
        "{} snapshots ({}, {} added)",
        taken.len(),
        super::ops::human_bytes(bytes),
        super::ops::human_bytes(added)
    );
    if sched.keep.is_set() {
        let removed = apply_retention(
            sn,
            &spec.name,
            &sched.snapshot_type,
            &sched.keep,
            protected,
            Timestamp::now(),
        )?;
        msg.push_str(&format!("; retention removed {removed}"));
    }
    Ok(msg)
}

/// Forgets the app's snapshots of `kind` that the policy does not keep, per directory.
pub fn apply_retention(
    sn: &Snapshots,
    app: &str,
    kind: &str,
    keep: &Retention,
    protected: &[String],
    now: Timestamp,
) -> Result<usize, String> {
    let repo = sn.repo()?;
    let mine = tag("app", app);
    let snaps: Vec<_> = sn
        .all()?
        .into_iter()
        .filter(|s| s.has_tag(&mine) && s.kind.as_deref() == Some(kind) && !s.has_tag(PRE_RESTORE))
        .collect();
    let policy = policy(keep)?;
    let items: Vec<_> = snaps.iter().map(|s| s.forget_item()).collect();
    let group_by = GroupBy {
        host: false,
        paths: true,
        tags: false,
    };
    let groups = apply_policy(&items, &policy, group_by, now, &TimeZone::system());
    let mut removed = 0;
    let started = Instant::now();
    for d in groups.iter().flat_map(|g| &g.decisions).filter(|d| !d.keep) {
        let snap = snaps.iter().find(|s| s.id.to_hex() == d.id);
        let referenced = snap.is_some_and(|s| protected.iter().any(|set| s.has_tag(&tag("set", set))));
        if referenced {
            continue;
        }
        let id = d.id.parse().map_err(|e| format!("snapshot id {}: {e}", d.id))?;
        repo.remove_snapshot(&id)
            .map_err(|e| format!("cannot forget snapshot {}: {e}", &d.id[..8]))?;
        removed += 1;
    }
    sn.record(&SnapshotRun {
        time: Timestamp::now(),
        app: app.to_string(),
        kind: kind.to_string(),
        op: "forget".into(),
        reason: SCHEDULED.into(),
        ok: true,
        duration_ms: started.elapsed().as_millis() as u64,
        snapshot_id: None,
        bytes: None,
        stored: None,
        message: format!("removed {removed}"),
    });
    Ok(removed)
}

fn policy(keep: &Retention) -> Result<KeepPolicy, String> {
    let count = |n: Option<u32>| n.map(Keep::Count);
    Ok(KeepPolicy {
        last: count(keep.last),
        hourly: count(keep.hourly),
        daily: count(keep.daily),
        weekly: count(keep.weekly),
        monthly: count(keep.monthly),
        yearly: count(keep.yearly),
        within: keep
            .within
            .as_deref()
            .map(|w| w.parse::<KeepDuration>().map_err(|e| format!("keep.within {w:?}: {e}")))
            .transpose()?,
        tags: keep.tags.iter().map(|t| vec![t.clone()]).collect(),
        ..Default::default()
    })
}

fn verify_job(sn: &Snapshots, app: &str, sched: &Schedule) -> Result<String, String> {
    let Some(v) = &sched.verify else {
        return Err("no verify schedule".into());
    };
    let repo = sn.repo()?;
    let mine = tag("app", app);
    let ids: Vec<_> = sn
        .all()?
        .into_iter()
        .filter(|s| s.has_tag(&mine) && s.kind.as_deref() == Some(sched.snapshot_type.as_str()))
        .map(|s| s.id)
        .collect();
    if ids.is_empty() {
        return Ok("no snapshots to check yet".into());
    }
    let read: ReadData = v.subset.parse().map_err(|e| format!("subset {}: {e}", v.subset))?;
    let started = Instant::now();
    let result = verify(&repo, &ids, read, &NoProgress);
    let (ok, message, bytes) = match &result {
        Ok(r) if r.ok() => (
            true,
            format!(
                "{} snapshots, {} packs read ({}), no errors",
                r.snapshots,
                r.packs_read,
                super::ops::human_bytes(r.bytes_read)
            ),
            Some(r.bytes_read),
        ),
        Ok(r) => (
            false,
            format!(
                "{} errors: {}",
                r.errors.len(),
                r.errors
                    .iter()
                    .take(3)
                    .map(|e| format!("{}: {}", e.object, e.detail))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            Some(r.bytes_read),
        ),
        Err(e) => (false, format!("verify failed: {e}"), None),
    };
    sn.record(&SnapshotRun {
        time: Timestamp::now(),
        app: app.to_string(),
        kind: sched.snapshot_type.clone(),
        op: "verify".into(),
        reason: SCHEDULED.into(),
        ok,
        duration_ms: started.elapsed().as_millis() as u64,
        snapshot_id: None,
        bytes,
        stored: None,
        message: message.clone(),
    });
    if ok { Ok(message) } else { Err(message) }
}

fn prune_job(sn: &Arc<Snapshots>) -> Result<String, String> {
    if !sn.repo_path().join("config").exists() {
        return Ok("no repository yet".into());
    }
    let repo = sn.repo()?;
    let started = Instant::now();
    let opts = PruneOptions {
        lock_wait: Duration::from_secs(600),
        ..Default::default()
    };
    let result = prune(&repo, &opts, &NoProgress).map_err(|e| format!("prune failed: {e}"));
    let message = match &result {
        Ok(plan) => format!(
            "{} packs deleted, {} repacked, {} freed",
            plan.packs_delete.len(),
            plan.packs_repack.len(),
            super::ops::human_bytes(plan.bytes_freed)
        ),
        Err(e) => e.clone(),
    };
    sn.record(&SnapshotRun {
        time: Timestamp::now(),
        app: DAEMON.into(),
        kind: String::new(),
        op: "prune".into(),
        reason: SCHEDULED.into(),
        ok: result.is_ok(),
        duration_ms: started.elapsed().as_millis() as u64,
        snapshot_id: None,
        bytes: None,
        stored: None,
        message: message.clone(),
    });
    result.map(|_| message)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use zenith_snapshot::crypto::{KdfParams, Password};

    use super::*;
    use crate::state::SnapshotConfig;
    use crate::store::Store;

    fn setup(dir: &Path, keep: &str) -> (Arc<Snapshots>, AppSpec) {
        let store = Store::open(&dir.join("state.db")).unwrap();
        let sn = Arc::new(Snapshots::new(
            SnapshotConfig {
                repo: dir.join("repo"),
                password: Password::new("pw"),
                kdf: KdfParams::insecure_for_tests(),
            },
            store,
        ));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let text = format!(
            "[app]\nname = \"shop\"\n[services.db]\ncommand = \"./db\"\nstate_dirs = [\"./data\"]\n\
             [schedules.data]\ncron = \"@daily\"\nkeep = {{ {keep} }}\nverify = {{ cron = \"@daily\", subset = \"100%\" }}\n"
        );
        let spec = zenith_spec::parse(&text, &dir.join("zenith.toml")).unwrap();
        (sn, spec)
    }

    fn data_snapshots(sn: &Snapshots) -> Vec<zenith_snapshot::Snapshot> {
        sn.all()
            .unwrap()
            .into_iter()
            .filter(|s| s.kind.as_deref() == Some("data"))
            .collect()
    }

    #[test]
    fn each_run_snapshots_then_applies_retention_but_keeps_what_revisions_record() {
        let tmp = tempfile::tempdir().unwrap();
        let (sn, spec) = setup(tmp.path(), "last = 2");
        let sched = spec.schedules[0].clone();
        let mut sets = Vec::new();
        for i in 0..4 {
            std::fs::write(tmp.path().join("data/file"), format!("version {i}")).unwrap();
            // The first run's set is recorded on a revision: retention must not touch it.
            let protected: Vec<String> = sets.first().cloned().into_iter().collect();
            let msg = snapshot_job(&sn, &spec, &sched, Some(1), &protected).unwrap();
            assert!(msg.starts_with("1 snapshots"), "{msg}");
            let newest = data_snapshots(&sn).into_iter().max_by_key(|s| s.time).unwrap();
            sets.push(super::super::tag_value(&newest, "set").unwrap().to_string());
        }
        let left: Vec<String> = data_snapshots(&sn)
            .iter()
            .map(|s| super::super::tag_value(s, "set").unwrap().to_string())
            .collect();
        assert_eq!(
            left.len(),
            3,
            "the last 2, and the first (recorded on a revision): {left:?}"
        );
        for set in [&sets[0], &sets[2], &sets[3]] {
            assert!(left.contains(set), "{set} missing from {left:?}");
        }
        let runs = sn.store().latest_snapshot_runs().unwrap();
        assert!(runs.iter().any(|r| r.op == "forget" && r.ok));
        assert!(runs.iter().any(|r| r.op == "create" && r.ok && r.bytes == Some(9)));
    }

    #[test]
    fn a_verify_run_records_its_verdict_and_names_the_damage() {
        let tmp = tempfile::tempdir().unwrap();
        let (sn, spec) = setup(tmp.path(), "");
        let sched = spec.schedules[0].clone();
        assert_eq!(verify_job(&sn, "shop", &sched).unwrap(), "no snapshots to check yet");
        std::fs::write(tmp.path().join("data/file"), vec![7u8; 200_000]).unwrap();
        snapshot_job(&sn, &spec, &sched, None, &[]).unwrap();
        let ok = verify_job(&sn, "shop", &sched).unwrap();
        assert!(ok.contains("no errors"), "{ok}");
        // Flip a byte in every pack: the next verify fails, and says where.
        for e in walk(&tmp.path().join("repo/data")) {
            let mut bytes = std::fs::read(&e).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x40;
            std::fs::write(&e, bytes).unwrap();
        }
        let err = verify_job(&sn, "shop", &sched).unwrap_err();
        assert!(err.contains("errors"), "{err}");
        let runs = sn.store().latest_snapshot_runs().unwrap();
        let last = runs.iter().filter(|r| r.op == "verify").max_by_key(|r| r.time).unwrap();
        assert!(!last.ok);
    }

    fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
        out
    }
}
