//! The daemon's side of state: its snapshot repository, and everything it does with it. The
//! hooks around deploys and stops ([`Snapshots`] implements the controller's
//! [`zenith_rollout::StateHooks`]), rollback with state and recovery (`ops`), schedules with
//! retention and verification (`schedule`), restore drills (`drill`) and snapshot health
//! (`health`).
//!
//! Every snapshot the daemon takes of an app carries tags that say whose it is and why:
//! `app=NAME`, `service=NAME`, `set=ID` (the snapshots taken together, e.g. before one
//! deploy), `revision=N` where one applies, and the reason (`before-deploy`, `on-stop`,
//! `scheduled`, `pre-restore`). A revision records the set taken before it rolled out.

pub mod drill;
pub mod health;
pub mod ops;
pub mod schedule;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zenith_snapshot::archiver::{CreateOptions, ParentChoice, create};
use zenith_snapshot::crypto::{KdfParams, Password};
use zenith_snapshot::progress::NoProgress;
use zenith_snapshot::repo::InitOptions;
use zenith_snapshot::restorer::{RestoreOptions, RestoreReport, restore};
use zenith_snapshot::{Repository, Snapshot};
use zenith_spec::{AppSpec, ServiceSpec};

use crate::store::{AuditEntry, AuditResult, SnapshotRun, Store};

/// Where the daemon keeps its snapshots.
#[derive(Clone)]
pub struct SnapshotConfig {
    pub repo: PathBuf,
    pub password: Password,
    /// Key derivation for a repository the daemon creates.
    pub kdf: KdfParams,
}

/// How long daemon operations wait for another process's repository lock (a prune, a
/// `zenith snapshot forget` on the command line) before they fail.
const LOCK_WAIT: Duration = Duration::from_secs(120);

/// The reason tags.
pub const BEFORE_DEPLOY: &str = "before-deploy";
pub const ON_STOP: &str = "on-stop";
pub const SCHEDULED: &str = "scheduled";
pub const PRE_RESTORE: &str = "pre-restore";

/// `key=value`, the form of the daemon's tags.
pub fn tag(key: &str, value: impl std::fmt::Display) -> String {
    format!("{key}={value}")
}

/// The value of the snapshot's `key=` tag.
pub fn tag_value<'a>(snap: &'a Snapshot, key: &str) -> Option<&'a str> {
    snap.tags
        .iter()
        .find_map(|t| t.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// A new set id: the app, what it is for, and a random suffix.
pub fn new_set_id(app: &str, what: &str) -> String {
    let mut b = [0u8; 3];
    getrandom::fill(&mut b).expect("the OS random source works");
    format!("{app}-{what}-{}", hex::encode(b))
}

/// One snapshot to take: a service's state directories, with its tags.
pub struct Take<'a> {
    pub app: &'a str,
    pub service: &'a str,
    pub dirs: &'a [PathBuf],
    pub kind: &'a str,
    pub reason: &'a str,
    pub revision: Option<u64>,
    pub set: &'a str,
}

/// A snapshot taken of one directory.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Taken {
    pub service: String,
    pub dir: PathBuf,
    pub snapshot: String,
    pub bytes: u64,
    pub added: u64,
    pub seconds: f64,
}

pub struct Snapshots {
    config: SnapshotConfig,
    repo: Mutex<Option<Arc<Repository>>>,
    store: Store,
    /// (app, service, hook) → failures since the daemon started, for `/metrics`.
    failures: Mutex<BTreeMap<(String, String, String), u64>>,
}

impl Snapshots {
    pub fn new(config: SnapshotConfig, store: Store) -> Snapshots {
        Snapshots {
            config,
            repo: Mutex::new(None),
            store,
            failures: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn repo_path(&self) -> &Path {
        &self.config.repo
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The repository, opened (or created) the first time it is needed.
    pub fn repo(&self) -> Result<Arc<Repository>, String> {
        let mut slot = self.repo.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = slot.as_ref() {
            return Ok(r.clone());
        }
        let path = &self.config.repo;
        let opened = if path.join("config").exists() {
            Repository::open(path, &self.config.password)
        } else {
            let opts = InitOptions {
                kdf: self.config.kdf,
                ..Default::default()
            };
            tracing::info!(repo = %path.display(), "creating the daemon's snapshot repository");
            Repository::init(path, &self.config.password, &opts, None)
        };
        let repo = Arc::new(opened.map_err(|e| format!("snapshot repository {}: {e}", path.display()))?);
        *slot = Some(repo.clone());
        Ok(repo)
    }

    /// The repository's snapshots, oldest first; the index is reread so snapshots written by
    /// other processes count.
    pub fn all(&self) -> Result<Vec<Snapshot>, String> {
        let repo = self.repo()?;
        repo.snapshots().map_err(|e| format!("cannot list snapshots: {e}"))
    }

    /// Snapshots each directory of `take.dirs` that exists (a directory not created yet has
    /// nothing to keep). Every run is recorded for health; the first failure stops the rest.
    pub fn take(&self, take: &Take<'_>) -> Result<Vec<Taken>, String> {
        let repo = self.repo()?;
        let mut out = Vec::new();
        for dir in take.dirs.iter().filter(|d| d.is_dir()) {
            let mut tags = vec![
                tag("app", take.app),
                tag("service", take.service),
                tag("set", take.set),
                take.reason.to_string(),
            ];
            if let Some(r) = take.revision {
                tags.push(tag("revision", r));
            }
            let opts = CreateOptions {
                paths: vec![dir.clone()],
                kind: Some(take.kind.to_string()),
                tags,
                parent: ParentChoice::Auto,
                lock_wait: LOCK_WAIT,
                ..Default::default()
            };
            let started = Instant::now();
            let result = create(&repo, &opts, &NoProgress);
            let elapsed = started.elapsed();
            let mut run = SnapshotRun {
                time: jiff::Timestamp::now(),
                app: take.app.to_string(),
                kind: take.kind.to_string(),
                op: "create".into(),
                reason: take.reason.to_string(),
                ok: result.is_ok(),
                duration_ms: elapsed.as_millis() as u64,
                snapshot_id: None,
                bytes: None,
                stored: None,
                message: String::new(),
            };
            match result {
                Ok(report) => {
                    let s = &report.snapshot;
                    run.snapshot_id = Some(s.id.to_hex());
                    run.bytes = Some(s.summary.bytes);
                    run.stored = Some(s.summary.bytes_added_stored);
                    run.message = report.warnings.join("; ");
                    self.record(&run);
                    out.push(Taken {
                        service: take.service.to_string(),
                        dir: dir.clone(),
                        snapshot: s.id.to_hex(),
                        bytes: s.summary.bytes,
                        added: s.summary.bytes_added_stored,
                        seconds: elapsed.as_secs_f64(),
                    });
                }
                Err(e) => {
                    let msg = format!("snapshot of {} failed: {e}", dir.display());
                    run.message = msg.clone();
                    self.record(&run);
                    return Err(msg);
                }
            }
        }
        Ok(out)
    }

    /// The snapshots before-deploy hooks take for revision `revision` of `spec`, as one set.
    /// `None` when no service asks for it.
    pub fn before_deploy(&self, spec: &AppSpec, revision: u64) -> Result<Option<(String, Vec<Taken>)>, String> {
        let services: Vec<&ServiceSpec> = spec
            .services
            .iter()
            .filter(|s| s.state.snapshot_before_deploy && !s.state_dirs.is_empty())
            .collect();
        if services.is_empty() {
            return Ok(None);
        }
        let set = new_set_id(&spec.name, &format!("r{revision}"));
        let mut taken = Vec::new();
        for svc in services {
            taken.extend(self.take(&Take {
                app: &spec.name,
                service: &svc.name,
                dirs: &svc.state_dirs,
                kind: &svc.state.snapshot_type,
                reason: BEFORE_DEPLOY,
                revision: Some(revision),
                set: &set,
            })?);
        }
        // State directories that do not exist yet hold nothing to come back to.
        Ok((!taken.is_empty()).then_some((set, taken)))
    }

    /// The snapshots of one set, oldest first.
    pub fn set(&self, set: &str) -> Result<Vec<Snapshot>, String> {
        let want = tag("set", set);
        Ok(self.all()?.into_iter().filter(|s| s.has_tag(&want)).collect())
    }

    /// Restores `snap` (a snapshot of one directory) into `dir`, swapping it in whole. No
    /// pre-restore snapshot here: the callers take theirs first, as one set.
    pub fn restore_dir(
        &self,
        app: &str,
        snap: &Snapshot,
        dir: &Path,
        verify: bool,
        reason: &str,
    ) -> Result<RestoreReport, String> {
        let repo = self.repo()?;
        let opts = RestoreOptions {
            target: Some(dir.to_path_buf()),
            verify,
            backup: false,
            lock_wait: LOCK_WAIT,
            ..Default::default()
        };
        let started = Instant::now();
        let result = restore(&repo, snap, &opts, &NoProgress);
        let result = match result {
            Ok(r) if !r.damaged.is_empty() => Err(format!(
                "restore of snapshot {} into {} found damaged files: {}",
                snap.id.short(),
                dir.display(),
                r.damaged.join("; ")
            )),
            Ok(r) => Ok(r),
            Err(e) => Err(format!(
                "restore of snapshot {} into {} failed: {e}",
                snap.id.short(),
                dir.display()
            )),
        };
        self.record(&SnapshotRun {
            time: jiff::Timestamp::now(),
            app: app.to_string(),
            kind: snap.kind.clone().unwrap_or_default(),
            op: "restore".into(),
            reason: reason.to_string(),
            ok: result.is_ok(),
            duration_ms: started.elapsed().as_millis() as u64,
            snapshot_id: Some(snap.id.to_hex()),
            bytes: result.as_ref().ok().map(|r| r.bytes),
            stored: None,
            message: result.as_ref().err().cloned().unwrap_or_default(),
        });
        result
    }

    /// The newest of `snaps` of directory `dir` of `app`'s `service` that is a real state
    /// snapshot (not a pre-restore safety copy).
    fn latest_of_dir<'a>(snaps: &'a [Snapshot], app: &str, service: &str, dir: &Path) -> Option<&'a Snapshot> {
        let (a, s) = (tag("app", app), tag("service", service));
        let path = dir.to_string_lossy();
        snaps
            .iter()
            .filter(|x| x.has_tag(&a) && x.has_tag(&s) && !x.has_tag(PRE_RESTORE) && x.paths == [path.as_ref()])
            .max_by_key(|x| x.time)
    }

    pub fn record(&self, run: &SnapshotRun) {
        if let Err(e) = self.store.record_snapshot_run(run) {
            tracing::error!(error = %e, "could not record a snapshot run");
        }
    }

    pub fn failures(&self) -> BTreeMap<(String, String, String), u64> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl zenith_rollout::StateHooks for Snapshots {
    fn snapshot_on_stop(&self, app: &str, revision: u64, service: &ServiceSpec) -> Result<String, String> {
        let set = new_set_id(app, ON_STOP);
        let taken = self.take(&Take {
            app,
            service: &service.name,
            dirs: &service.state_dirs,
            kind: &service.state.snapshot_type,
            reason: ON_STOP,
            revision: Some(revision),
            set: &set,
        })?;
        Ok(taken
            .iter()
            .map(|t| t.snapshot[..8].to_string())
            .collect::<Vec<_>>()
            .join(","))
    }

    fn restore_on_start(&self, app: &str, service: &ServiceSpec) -> Result<Option<String>, String> {
        let empty: Vec<&PathBuf> = service
            .state_dirs
            .iter()
            .filter(|d| std::fs::read_dir(d).map(|mut e| e.next().is_none()).unwrap_or(true))
            .collect();
        if empty.is_empty() {
            return Ok(None);
        }
        let snaps = self.all()?;
        let mut done = Vec::new();
        for dir in empty {
            let Some(snap) = Self::latest_of_dir(&snaps, app, &service.name, dir) else {
                continue;
            };
            self.restore_dir(app, snap, dir, false, "restore-on-start")?;
            done.push(format!("{} from snapshot {}", dir.display(), snap.id.short()));
        }
        Ok((!done.is_empty()).then(|| done.join(", ")))
    }

    fn hook_failed(&self, app: &str, service: &str, hook: &str, error: &str) {
        *self
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((app.to_string(), service.to_string(), hook.to_string()))
            .or_default() += 1;
        let entry = AuditEntry {
            time: jiff::Timestamp::now(),
            actor: None,
            role: None,
            action: format!("hook {hook}"),
            app: Some(app.to_string()),
            target: format!("service {app}/{service}"),
            result: AuditResult::Error,
            detail: error.to_string(),
        };
        if let Err(e) = self.store.append_audit(&entry) {
            tracing::error!(error = %e, "could not write the audit log");
        }
    }
}

/// Computes the snapshot health now, and keeps it for `/metrics`.
pub async fn refresh_health(s: &crate::api::Shared) -> Result<health::HealthReport, String> {
    let s2 = s.clone();
    let report = tokio::task::spawn_blocking(move || {
        let specs = schedule::desired_specs(&s2);
        let snaps = if s2.snapshots.repo_path().join("config").exists() {
            s2.snapshots.all()?
        } else {
            Vec::new()
        };
        let runs = s2.store.latest_snapshot_runs().map_err(|e| e.to_string())?;
        Ok::<_, String>(health::assess(&specs, &snaps, &runs, jiff::Timestamp::now()))
    })
    .await
    .map_err(|e| e.to_string())??;
    *s.health.write().unwrap_or_else(|e| e.into_inner()) = Some(report.clone());
    Ok(report)
}

/// The snapshot series of `/metrics` (see `docs/monitoring/`).
pub fn render_metrics(out: &mut String, s: &crate::api::State) {
    use std::fmt::Write;
    let report = s.health.read().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(r) = report {
        type G = (&'static str, &'static str, fn(&health::TypeHealth) -> Option<f64>);
        let gauges: [G; 11] = [
            (
                "zenith_snapshot_last_timestamp_seconds",
                "Unix time of the newest snapshot.",
                |t| t.latest.map(|x| x.as_millisecond() as f64 / 1000.0),
            ),
            ("zenith_snapshot_age_seconds", "Age of the newest snapshot.", |t| {
                t.age_seconds
            }),
            (
                "zenith_snapshot_size_bytes",
                "Bytes of files in the newest snapshot.",
                |t| t.size_bytes.map(|b| b as f64),
            ),
            (
                "zenith_snapshot_added_bytes",
                "Bytes the newest snapshot added to the repository after dedup and compression.",
                |t| t.added_bytes.map(|b| b as f64),
            ),
            (
                "zenith_snapshot_compression_ratio",
                "Logical bytes over stored bytes of the newest snapshot.",
                |t| t.compression_ratio,
            ),
            ("zenith_snapshot_count", "Snapshots kept.", |t| Some(t.snapshots as f64)),
            (
                "zenith_snapshot_create_duration_seconds",
                "Duration of the last snapshot creation.",
                |t| t.create_seconds,
            ),
            (
                "zenith_snapshot_restore_duration_seconds",
                "Duration of the last restore.",
                |t| t.restore_seconds,
            ),
            (
                "zenith_snapshot_verify_ok",
                "1 if the last integrity check passed, 0 if it failed.",
                |t| t.verify_ok.map(|ok| if ok { 1.0 } else { 0.0 }),
            ),
            (
                "zenith_snapshot_verify_timestamp_seconds",
                "When the last integrity check ran.",
                |t| t.verify_at.map(|x| x.as_millisecond() as f64 / 1000.0),
            ),
            ("zenith_snapshot_health", "0 ok, 1 warning, 2 critical.", |t| {
                Some(f64::from(t.status.gauge()))
            }),
        ];
        for (name, help, get) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for t in &r.types {
                if let Some(v) = get(t) {
                    let _ = writeln!(out, "{name}{{app=\"{}\",type=\"{}\"}} {v}", t.app, t.kind);
                }
            }
        }
        type D = (&'static str, &'static str, fn(&health::DrillHealth) -> Option<f64>);
        let drills: [D; 4] = [
            (
                "zenith_drill_ok",
                "1 if the last restore drill passed, 0 if it failed.",
                |d| Some(if d.ok { 1.0 } else { 0.0 }),
            ),
            (
                "zenith_drill_timestamp_seconds",
                "When the last restore drill ran.",
                |d| Some(d.at.as_millisecond() as f64 / 1000.0),
            ),
            (
                "zenith_drill_duration_seconds",
                "Duration of the last restore drill.",
                |d| Some(d.seconds),
            ),
            (
                "zenith_drill_restore_duration_seconds",
                "Restore part of the last restore drill.",
                |d| d.restore_seconds,
            ),
        ];
        for (name, help, get) in drills {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for d in &r.drills {
                if let Some(v) = get(d) {
                    let _ = writeln!(out, "{name}{{app=\"{}\"}} {v}", d.app);
                }
            }
        }
    }
    let jobs = s.schedules.read().unwrap_or_else(|e| e.into_inner()).clone();
    let _ = writeln!(
        out,
        "# HELP zenith_schedule_last_run_ok 1 if the job's last run succeeded.\n# TYPE zenith_schedule_last_run_ok gauge"
    );
    for j in &jobs {
        if let Some(ok) = j.last_ok {
            let _ = writeln!(
                out,
                "zenith_schedule_last_run_ok{{app=\"{}\",schedule=\"{}\",job=\"{}\"}} {}",
                j.app,
                j.name,
                j.job,
                u8::from(ok)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP zenith_schedule_next_run_timestamp_seconds When the job runs next.\n# TYPE zenith_schedule_next_run_timestamp_seconds gauge"
    );
    for j in &jobs {
        if let Some(n) = j.next {
            let _ = writeln!(
                out,
                "zenith_schedule_next_run_timestamp_seconds{{app=\"{}\",schedule=\"{}\",job=\"{}\"}} {}",
                j.app,
                j.name,
                j.job,
                n.as_millisecond() as f64 / 1000.0
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP zenith_snapshot_hook_failures_total State hooks that failed or ran out of time.\n# TYPE zenith_snapshot_hook_failures_total counter"
    );
    for ((app, service, hook), n) in s.snapshots.failures() {
        let _ = writeln!(
            out,
            "zenith_snapshot_hook_failures_total{{app=\"{app}\",service=\"{service}\",hook=\"{hook}\"}} {n}"
        );
    }
}
