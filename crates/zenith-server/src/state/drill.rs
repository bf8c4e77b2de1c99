//! Restore drills (`zenith recover APP --drill`): prove that the app's snapshots bring it back.
//! The snapshot set is restored into a scratch directory under the daemon's data directory,
//! one replica of each service it covers is started there — its `STATE_DIRECTORY` (and any
//! env value naming a live state directory) pointing into the scratch copy, on a port of its
//! own — and is held to its health check and smoke probes. Then everything is torn down. The
//! live state directories, replicas and public ports are never touched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use zenith_runtime::ReplicaSpec;
use zenith_spec::{AppSpec, ServiceSpec, UpdateStrategy, VolumeSource};

use super::ops::{DirRestore, Step, find_set, human_bytes, plan_restores};
use crate::api::Shared;
use crate::store::SnapshotRun;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillReport {
    pub app: String,
    pub ok: bool,
    pub set: Option<String>,
    pub restore_seconds: f64,
    pub bytes: u64,
    pub seconds: f64,
    pub steps: Vec<Step>,
    pub error: Option<String>,
}

impl DrillReport {
    pub fn summary(&self) -> String {
        match &self.error {
            None => format!(
                "drill passed: set {} restored ({}) in {:.1}s, healthy; {:.1}s in all",
                self.set.as_deref().unwrap_or("?"),
                human_bytes(self.bytes),
                self.restore_seconds,
                self.seconds
            ),
            Some(e) => format!("drill failed: {e}"),
        }
    }
}

/// Runs one drill of `app` with the snapshot set `query` (`latest`, a set or a snapshot id).
pub async fn run(s: &Shared, app: &str, query: &str) -> DrillReport {
    let started = Instant::now();
    let mut report = DrillReport {
        app: app.to_string(),
        ok: false,
        set: None,
        restore_seconds: 0.0,
        bytes: 0,
        seconds: 0.0,
        steps: Vec::new(),
        error: None,
    };
    let scratch = s.data_dir.join("drills").join(super::new_set_id(app, "drill"));
    let result = drill(s, app, query, &scratch, &mut report).await;
    let t = Instant::now();
    let _ = tokio::fs::remove_dir_all(&scratch).await;
    report.steps.push(Step {
        name: "tear down".into(),
        seconds: t.elapsed().as_secs_f64(),
        detail: "scratch replicas stopped, scratch directory removed".into(),
    });
    report.ok = result.is_ok();
    report.error = result.err();
    report.seconds = started.elapsed().as_secs_f64();
    s.snapshots.record(&SnapshotRun {
        time: jiff::Timestamp::now(),
        app: app.to_string(),
        kind: String::new(),
        op: "drill".into(),
        reason: "drill".into(),
        ok: report.ok,
        duration_ms: (report.seconds * 1000.0) as u64,
        snapshot_id: report.set.clone(),
        bytes: Some(report.bytes),
        stored: None,
        message: report.summary(),
    });
    report
}

async fn drill(s: &Shared, app: &str, query: &str, scratch: &Path, report: &mut DrillReport) -> Result<(), String> {
    let spec = super::schedule::desired_specs(s)
        .into_iter()
        .find(|x| x.name == app)
        .ok_or_else(|| format!("no app named {app} with a revision to drill"))?;
    // Restore.
    let t = Instant::now();
    let (sn, a, q) = (s.snapshots.clone(), app.to_string(), query.to_string());
    let (set, snaps) = tokio::task::spawn_blocking(move || find_set(&sn, &a, &q))
        .await
        .map_err(|e| e.to_string())??;
    report.set = Some(set.clone());
    let restores = plan_restores(&spec, &snaps)?;
    let mapping: Vec<(DirRestore, PathBuf)> = restores
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let name = r
                .dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (
                r.clone(),
                scratch.join("state").join(format!("{}-{i}-{name}", r.service)),
            )
        })
        .collect();
    let (sn, a, m) = (s.snapshots.clone(), app.to_string(), mapping.clone());
    let bytes = tokio::task::spawn_blocking(move || {
        let repo = sn.repo()?;
        let mut bytes = 0;
        for (r, target) in &m {
            let id: zenith_snapshot::Id = r.snapshot.parse().map_err(|e| format!("{e}"))?;
            let snap = repo.load_snapshot(&id).map_err(|e| e.to_string())?;
            bytes += sn.restore_dir(&a, &snap, target, true, "drill")?.bytes;
        }
        Ok::<_, String>(bytes)
    })
    .await
    .map_err(|e| e.to_string())??;
    report.bytes = bytes;
    report.restore_seconds = t.elapsed().as_secs_f64();
    report.steps.push(Step {
        name: "restore".into(),
        seconds: report.restore_seconds,
        detail: format!(
            "set {set}: {} directories, {} into {}, every file checked",
            mapping.len(),
            human_bytes(bytes),
            scratch.display()
        ),
    });
    // Start one replica of each service the set covers, on scratch state and a scratch port.
    let t = Instant::now();
    let services: Vec<&ServiceSpec> = spec
        .services
        .iter()
        .filter(|svc| mapping.iter().any(|(r, _)| r.service == svc.name))
        .collect();
    let mut started = Vec::new();
    let result = async {
        for svc in &services {
            let (rspec, port) = scratch_replica(s, &spec, svc, &mapping, scratch)?;
            let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
            s.env
                .runtime
                .start(&rspec, tx)
                .await
                .map_err(|e| format!("{}: the scratch replica did not start: {e}", svc.name))?;
            started.push((rspec, port, (*svc).clone()));
        }
        for (rspec, port, svc) in &started {
            healthy(s, svc, rspec, *port).await?;
        }
        Ok::<_, String>(())
    }
    .await;
    for (rspec, _, svc) in &started {
        let _ = s.env.runtime.stop(&rspec.id, svc.stop_grace).await;
    }
    report.steps.push(Step {
        name: "start and check".into(),
        seconds: t.elapsed().as_secs_f64(),
        detail: match &result {
            Ok(()) => format!(
                "{} healthy on scratch ports {}",
                services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "),
                started.iter().map(|x| x.1.to_string()).collect::<Vec<_>>().join(", ")
            ),
            Err(e) => e.clone(),
        },
    });
    result
}

/// A replica of `svc` whose state directories are the scratch copies.
fn scratch_replica(
    s: &Shared,
    spec: &AppSpec,
    svc: &ServiceSpec,
    mapping: &[(DirRestore, PathBuf)],
    scratch: &Path,
) -> Result<(ReplicaSpec, u16), String> {
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port for the drill: {e}"))?
        .port();
    let remap = |dir: &Path| -> PathBuf {
        mapping
            .iter()
            .find(|(r, _)| r.service == svc.name && r.dir == dir)
            .map(|(_, t)| t.clone())
            // A state directory the set does not cover still must not be the live one.
            .unwrap_or_else(|| scratch.join("empty").join(dir.file_name().unwrap_or_default()))
    };
    let dirs: Vec<PathBuf> = svc.state_dirs.iter().map(|d| remap(d)).collect();
    for d in &dirs {
        std::fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }
    let mut env: BTreeMap<String, String> = svc
        .env
        .iter()
        .map(|(k, v)| {
            let mut v = v.clone();
            for (live, copy) in svc.state_dirs.iter().zip(&dirs) {
                v = v.replace(&live.display().to_string(), &copy.display().to_string());
            }
            (k.clone(), v)
        })
        .collect();
    env.insert("PORT".into(), port.to_string());
    env.insert("ZENITH_APP".into(), spec.name.clone());
    env.insert("ZENITH_SERVICE".into(), svc.name.clone());
    env.insert("ZENITH_DRILL".into(), "1".into());
    env.insert("ZENITH_DAEMON_ID".into(), s.env.daemon_marker.clone());
    zenith_rollout::controller::state_env(&mut env, &dirs);
    let id = format!("{}-{}-drill-{}", spec.name, svc.name, &super::new_set_id("", "")[2..]);
    let rspec = ReplicaSpec {
        id,
        command: svc.command.clone(),
        workdir: svc.workdir.clone(),
        env,
        secrets: svc.secrets.clone(),
        run_dir: scratch.join("run"),
        container: drill_container(spec, svc, port, &dirs),
    };
    Ok((rspec, port))
}

/// A container replica's mounts for a drill: each state directory or state volume is mounted
/// from its scratch copy; other named volumes are left out, so the drill never writes into
/// live data.
fn drill_container(
    spec: &AppSpec,
    svc: &ServiceSpec,
    port: u16,
    dirs: &[PathBuf],
) -> Option<zenith_runtime::ContainerSpec> {
    let mut c = zenith_rollout::controller::container_spec(&spec.name, svc, 0, port)?;
    c.labels.insert("zenith.drill".into(), "1".into());
    c.settings.volumes.retain_mut(|v| match &v.source {
        VolumeSource::Bind(host) => {
            if let Some(i) = svc.state_dirs.iter().position(|d| d == host) {
                v.source = VolumeSource::Bind(dirs[i].clone());
            }
            true
        }
        VolumeSource::Volume(name) => {
            let live = c.settings.volume_dirs.get(name);
            match live.and_then(|d| svc.state_dirs.iter().position(|s| s == d)) {
                Some(i) => {
                    v.source = VolumeSource::Bind(dirs[i].clone());
                    true
                }
                None => false,
            }
        }
    });
    Some(c)
}

/// Health check (the service's own, or a TCP connect for a service with a port) until it
/// passes or the progress deadline ends; then the smoke probes of a canary or blue-green.
async fn healthy(s: &Shared, svc: &ServiceSpec, rspec: &ReplicaSpec, port: u16) -> Result<(), String> {
    if let Some(check) = zenith_rollout::controller::effective_check(svc) {
        let until = Instant::now() + svc.update.progress_deadline();
        let mut last;
        loop {
            match zenith_runtime::probe(&check, port, s.env.runtime.as_ref(), rspec).await {
                Ok(()) => break,
                Err(e) => last = e,
            }
            if Instant::now() >= until {
                return Err(format!(
                    "{}: not healthy within {}s on the restored state (last probe: {last})",
                    svc.name,
                    svc.update.progress_deadline().as_secs()
                ));
            }
            tokio::time::sleep(check.interval.min(Duration::from_millis(500))).await;
        }
    }
    let probes = match &svc.update {
        UpdateStrategy::Canary(c) => c.probes.clone(),
        UpdateStrategy::BlueGreen(b) => b.probes.clone(),
        UpdateStrategy::Rolling(_) => Vec::new(),
    };
    for p in &probes {
        zenith_rollout::smoke::run(port, p)
            .await
            .map_err(|e| format!("{}: smoke probe {} failed on the restored state: {e}", svc.name, p.path))?;
    }
    Ok(())
}
