//! Snapshot health: per app and snapshot type, how old the newest snapshot is, how big, how it
//! compressed, how long creating and restoring took, and what the last integrity check and
//! restore drill found, judged against the app's `[health]` thresholds. A pure function of
//! the snapshots, the recorded runs and `now`; the daemon serves it on the API and `/metrics`.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use zenith_snapshot::Snapshot;
use zenith_spec::AppSpec;

use super::{PRE_RESTORE, tag};
use crate::store::SnapshotRun;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warning,
    Critical,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Critical => "critical",
        }
    }

    /// The `/metrics` value: 0, 1, 2.
    pub fn gauge(self) -> u8 {
        self as u8
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypeHealth {
    pub app: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: Level,
    /// Why the status is not ok (empty when it is).
    pub reasons: Vec<String>,
    pub snapshots: u64,
    pub latest: Option<Timestamp>,
    pub latest_id: Option<String>,
    pub age_seconds: Option<f64>,
    pub size_bytes: Option<u64>,
    pub added_bytes: Option<u64>,
    pub compression_ratio: Option<f64>,
    pub create_seconds: Option<f64>,
    pub restore_seconds: Option<f64>,
    pub verify_ok: Option<bool>,
    pub verify_at: Option<Timestamp>,
    /// Whether a schedule takes snapshots of this type (age is judged only then: snapshots
    /// taken by hooks alone come when deploys and stops do).
    pub scheduled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillHealth {
    pub app: String,
    pub status: Level,
    pub ok: bool,
    pub at: Timestamp,
    pub seconds: f64,
    pub restore_seconds: Option<f64>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    pub generated_at: Timestamp,
    pub status: Level,
    pub types: Vec<TypeHealth>,
    pub drills: Vec<DrillHealth>,
}

/// Judges every (app, type) the specs schedule or hook, or that has snapshots.
pub fn assess(apps: &[AppSpec], snaps: &[Snapshot], runs: &[SnapshotRun], now: Timestamp) -> HealthReport {
    let mut types = Vec::new();
    let mut drills = Vec::new();
    for spec in apps {
        let mine = tag("app", &spec.name);
        let own: Vec<&Snapshot> = snaps
            .iter()
            .filter(|s| s.has_tag(&mine) && !s.has_tag(PRE_RESTORE))
            .collect();
        let scheduled: BTreeSet<&str> = spec.schedules.iter().map(|s| s.snapshot_type.as_str()).collect();
        let verified: BTreeSet<&str> = spec
            .schedules
            .iter()
            .filter(|s| s.verify.is_some())
            .map(|s| s.snapshot_type.as_str())
            .collect();
        let mut kinds: BTreeSet<String> = scheduled.iter().map(|s| s.to_string()).collect();
        for svc in &spec.services {
            let st = &svc.state;
            if st.snapshot_before_deploy || st.snapshot_on_stop {
                kinds.insert(st.snapshot_type.clone());
            }
        }
        kinds.extend(own.iter().filter_map(|s| s.kind.clone()));
        let app_runs: Vec<&SnapshotRun> = runs.iter().filter(|r| r.app == spec.name).collect();
        let last_run = |kind: &str, op: &str, ok_only: bool| {
            app_runs
                .iter()
                .filter(|r| r.kind == kind && r.op == op && (r.ok || !ok_only))
                .max_by_key(|r| r.time)
                .copied()
        };
        for kind in kinds {
            let of_kind: Vec<&&Snapshot> = own.iter().filter(|s| s.kind.as_deref() == Some(&kind)).collect();
            let latest = of_kind.iter().max_by_key(|s| s.time);
            let is_scheduled = scheduled.contains(kind.as_str());
            let mut h = TypeHealth {
                app: spec.name.clone(),
                kind: kind.clone(),
                status: Level::Ok,
                reasons: Vec::new(),
                snapshots: of_kind.len() as u64,
                latest: latest.map(|s| s.time),
                latest_id: latest.map(|s| s.id.to_hex()),
                age_seconds: latest.map(|s| (now.as_millisecond() - s.time.as_millisecond()).max(0) as f64 / 1000.0),
                size_bytes: latest.map(|s| s.summary.bytes),
                added_bytes: latest.map(|s| s.summary.bytes_added_stored),
                compression_ratio: latest
                    .filter(|s| s.summary.stored_bytes > 0)
                    .map(|s| s.summary.bytes as f64 / s.summary.stored_bytes as f64),
                create_seconds: last_run(&kind, "create", true).map(|r| r.duration_ms as f64 / 1000.0),
                restore_seconds: last_run(&kind, "restore", true).map(|r| r.duration_ms as f64 / 1000.0),
                verify_ok: None,
                verify_at: None,
                scheduled: is_scheduled,
            };
            let th = &spec.health;
            let mut raise = |level: Level, why: String| {
                h.status = h.status.max(level);
                h.reasons.push(why);
            };
            match h.age_seconds {
                None if is_scheduled => raise(Level::Warning, "no snapshot yet".into()),
                Some(age) if is_scheduled => {
                    let age_d = std::time::Duration::from_secs_f64(age);
                    if age_d > th.age_critical {
                        raise(
                            Level::Critical,
                            format!(
                                "newest snapshot is {} old (critical above {})",
                                human(age_d),
                                human(th.age_critical)
                            ),
                        );
                    } else if age_d > th.age_warning {
                        raise(
                            Level::Warning,
                            format!(
                                "newest snapshot is {} old (warning above {})",
                                human(age_d),
                                human(th.age_warning)
                            ),
                        );
                    }
                }
                _ => {}
            }
            if let Some(size) = h.size_bytes {
                if th.size_critical.is_some_and(|c| size > c) {
                    raise(
                        Level::Critical,
                        format!(
                            "newest snapshot holds {} (critical size)",
                            super::ops::human_bytes(size)
                        ),
                    );
                } else if th.size_warning.is_some_and(|w| size > w) {
                    raise(
                        Level::Warning,
                        format!("newest snapshot holds {} (warning size)", super::ops::human_bytes(size)),
                    );
                }
            }
            if let Some(c) = last_run(&kind, "create", false).filter(|r| !r.ok) {
                raise(Level::Warning, format!("the last snapshot failed: {}", c.message));
            }
            if let Some(v) = last_run(&kind, "verify", false) {
                h.verify_ok = Some(v.ok);
                h.verify_at = Some(v.time);
                if !v.ok {
                    raise(
                        Level::Critical,
                        format!("the last integrity check failed: {}", v.message),
                    );
                }
            }
            if verified.contains(kind.as_str()) {
                let last_ok = last_run(&kind, "verify", true).map(|r| r.time);
                let age = last_ok.map(|t| {
                    std::time::Duration::from_millis((now.as_millisecond() - t.as_millisecond()).max(0) as u64)
                });
                match age {
                    None => raise(Level::Warning, "never verified".into()),
                    Some(a) if a > th.verify_max_age => raise(
                        Level::Warning,
                        format!(
                            "last successful integrity check {} ago (more than {})",
                            human(a),
                            human(th.verify_max_age)
                        ),
                    ),
                    _ => {}
                }
            }
            types.push(h);
        }
        if let Some(d) = app_runs.iter().filter(|r| r.op == "drill").max_by_key(|r| r.time) {
            drills.push(DrillHealth {
                app: spec.name.clone(),
                status: if d.ok { Level::Ok } else { Level::Critical },
                ok: d.ok,
                at: d.time,
                seconds: d.duration_ms as f64 / 1000.0,
                restore_seconds: restore_of_drill(&app_runs),
                message: d.message.clone(),
            });
        }
    }
    let status = types
        .iter()
        .map(|t| t.status)
        .chain(drills.iter().map(|d| d.status))
        .max()
        .unwrap_or(Level::Ok);
    HealthReport {
        generated_at: now,
        status,
        types,
        drills,
    }
}

/// The restore part of the newest drill (recorded as a restore run with reason `drill`).
fn restore_of_drill(runs: &[&SnapshotRun]) -> Option<f64> {
    runs.iter()
        .filter(|r| r.op == "restore" && r.reason == "drill")
        .max_by_key(|r| r.time)
        .map(|r| r.duration_ms as f64 / 1000.0)
}

fn human(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s >= 86400 {
        format!("{}d{}h", s / 86400, s % 86400 / 3600)
    } else if s >= 3600 {
        format!("{}h{}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}m{}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use zenith_snapshot::Id;
    use zenith_snapshot::snapshot::Summary;

    use super::*;

    const SPEC: &str = "[app]\nname = \"shop\"\n[services.db]\ncommand = \"./db\"\nstate_dirs = [\"./data\"]\n\
        state = { snapshot_before_deploy = true }\n\
        [schedules.data]\ncron = \"0 2 * * *\"\nverify = { cron = \"0 4 * * 0\" }\n\
        [health]\nsize_warning = \"1MB\"\nsize_critical = \"10MB\"\n";

    fn at(hours_ago: i64, now: Timestamp) -> Timestamp {
        now - jiff::SignedDuration::from_hours(hours_ago)
    }

    fn snap(kind: &str, time: Timestamp, bytes: u64, tags: &[&str]) -> Snapshot {
        let mut tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        tags.push("app=shop".into());
        Snapshot {
            id: Id::random(),
            time,
            kind: Some(kind.into()),
            name: None,
            host: "h".into(),
            username: "u".into(),
            paths: vec!["/srv/data".into()],
            tags,
            tree: Id::random(),
            parent: None,
            summary: Summary {
                bytes,
                stored_bytes: bytes / 4,
                ..Default::default()
            },
            program_version: String::new(),
        }
    }

    fn run(kind: &str, op: &str, ok: bool, time: Timestamp) -> SnapshotRun {
        SnapshotRun {
            time,
            app: "shop".into(),
            kind: kind.into(),
            op: op.into(),
            reason: "scheduled".into(),
            ok,
            duration_ms: 1500,
            snapshot_id: None,
            bytes: None,
            stored: None,
            message: if ok { String::new() } else { "pack 1234 damaged".into() },
        }
    }

    fn assess_one(snaps: &[Snapshot], runs: &[SnapshotRun], now: Timestamp) -> HealthReport {
        let spec = zenith_spec::parse(SPEC, Path::new("/srv/zenith.toml")).unwrap();
        assess(&[spec], snaps, runs, now)
    }

    fn data(r: &HealthReport) -> &TypeHealth {
        r.types.iter().find(|t| t.kind == "data").unwrap()
    }

    #[test]
    fn age_thresholds_apply_to_scheduled_types_only() {
        let now = Timestamp::now();
        let fresh = [run("data", "verify", true, at(1, now))];
        for (hours, level) in [(2, Level::Ok), (30, Level::Warning), (50, Level::Critical)] {
            let r = assess_one(&[snap("data", at(hours, now), 100, &[])], &fresh, now);
            assert_eq!(data(&r).status, level, "{hours}h: {:?}", data(&r).reasons);
            assert_eq!(r.status, level);
        }
        // Hook snapshots of a type no schedule takes are reported, but their age is no alarm.
        let r = assess_one(&[snap("state", at(100, now), 100, &["before-deploy"])], &fresh, now);
        let state = r.types.iter().find(|t| t.kind == "state").unwrap();
        assert_eq!(state.status, Level::Ok);
        assert!(state.age_seconds.unwrap() > 99.0 * 3600.0);
        // A scheduled type with no snapshot yet is a warning, not silence.
        assert!(data(&r).reasons.iter().any(|x| x == "no snapshot yet"));
    }

    #[test]
    fn size_verify_and_drills_raise_the_status() {
        let now = Timestamp::now();
        let ok_verify = run("data", "verify", true, at(1, now));
        let r = assess_one(
            &[snap("data", at(1, now), 5_000_000, &[])],
            std::slice::from_ref(&ok_verify),
            now,
        );
        assert_eq!(data(&r).status, Level::Warning);
        assert_eq!(data(&r).compression_ratio, Some(4.0));
        let r = assess_one(
            &[snap("data", at(1, now), 50_000_000, &[])],
            std::slice::from_ref(&ok_verify),
            now,
        );
        assert_eq!(data(&r).status, Level::Critical);
        // A failed integrity check is critical, one too old a warning, none at all a warning.
        let bad = run("data", "verify", false, at(1, now));
        let r = assess_one(&[snap("data", at(1, now), 10, &[])], &[bad], now);
        assert_eq!(data(&r).status, Level::Critical);
        assert_eq!(data(&r).verify_ok, Some(false));
        let old = run("data", "verify", true, at(24 * 9, now));
        let r = assess_one(&[snap("data", at(1, now), 10, &[])], &[old], now);
        assert_eq!(data(&r).status, Level::Warning);
        let r = assess_one(&[snap("data", at(1, now), 10, &[])], &[], now);
        assert!(data(&r).reasons.iter().any(|x| x == "never verified"));
        // Pre-restore copies are not the newest snapshot.
        let r = assess_one(
            &[
                snap("data", at(60, now), 10, &[]),
                snap("data", at(0, now), 10, &["pre-restore"]),
            ],
            std::slice::from_ref(&ok_verify),
            now,
        );
        assert_eq!(data(&r).status, Level::Critical);
        // A failed drill makes the whole report critical.
        let drill = SnapshotRun {
            kind: String::new(),
            ..run("", "drill", false, at(1, now))
        };
        let r = assess_one(&[snap("data", at(1, now), 10, &[])], &[ok_verify, drill], now);
        assert_eq!(data(&r).status, Level::Ok);
        assert_eq!(r.drills[0].status, Level::Critical);
        assert_eq!(r.status, Level::Critical);
    }
}
