//! `zenith state`: the seed's in-container hooks (create_state_snapshot.sh,
//! restore_state_snapshot.sh) as one command. It reads STATE_DIRECTORY, SNAPSHOT_ENABLED,
//! STATE_SNAPSHOT_RETENTION and RESTORE_ENABLED, and creates the repository on first save, so
//! `zenith state save` works as a preStop hook as it is.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;
use zenith_snapshot::archiver::{CreateOptions, create};
use zenith_snapshot::forget::{GroupBy, Keep, KeepPolicy};
use zenith_snapshot::lock::Lock;
use zenith_snapshot::prune::{PruneOptions, prune_locked};
use zenith_snapshot::repo::InitOptions;
use zenith_snapshot::restorer::{RestoreOptions, restore};
use zenith_snapshot::{Repository, Snapshot};

use super::CmdResult;
use crate::env;
use crate::exit::{OK, usage};
use crate::output::{Out, bytes, local_time, table};
use crate::repo_open::{RepoArgs, kdf, password};

/// The seed's default state directory.
const DEFAULT_STATE_DIRECTORY: &str = "/data/state";
/// The seed's default retention.
const DEFAULT_RETENTION: u32 = 24;
const STATE_TYPE: &str = "state";

#[derive(Subcommand, Debug)]
pub enum StateCommand {
    /// Snapshot $STATE_DIRECTORY (unless SNAPSHOT_ENABLED=false), then keep the newest
    /// $STATE_SNAPSHOT_RETENTION state snapshots.
    Save,
    /// Restore a state snapshot into $STATE_DIRECTORY (unless RESTORE_ENABLED=false).
    Restore {
        /// `latest` or a snapshot name such as state-20250403-123456.
        #[arg(default_value = "latest")]
        snapshot: String,
    },
    /// List the state snapshots of $STATE_DIRECTORY.
    List,
    /// Show one state snapshot.
    Info { snapshot: String },
    /// Keep only the newest N state snapshots.
    Clean { keep: u32 },
}

fn state_dir() -> PathBuf {
    let raw = PathBuf::from(env::var(env::STATE_DIRECTORY).unwrap_or_else(|| DEFAULT_STATE_DIRECTORY.into()));
    zenith_snapshot::archiver::normalize_path(&raw).unwrap_or(raw)
}

/// The repository: --repo / ZENITH_REPO, or `<STATE_DIRECTORY>.snapshots` beside the state.
fn repo_path(args: &RepoArgs) -> PathBuf {
    args.repo.clone().unwrap_or_else(|| {
        let d = state_dir();
        let name = format!("{}.snapshots", d.file_name().unwrap_or_default().to_string_lossy());
        d.with_file_name(name)
    })
}

fn open(args: &RepoArgs, create_if_missing: bool) -> anyhow::Result<Repository> {
    let path = repo_path(args);
    let pw = password(
        env::ZENITH_PASSWORD,
        args.password_file.as_deref(),
        "repository password: ",
        false,
    )?;
    if !path.join("config").exists() {
        if !create_if_missing {
            return Err(zenith_snapshot::Error::NotARepository { path }.into());
        }
        let opts = InitOptions {
            kdf: kdf(),
            ..Default::default()
        };
        return Ok(Repository::init(&path, &pw, &opts, None)?);
    }
    Ok(Repository::open(&path, &pw)?)
}

/// The state snapshots of this directory (pre-restore safety copies are not among them: they
/// neither count for retention nor are restored by `latest`).
fn state_snapshots(repo: &Repository) -> anyhow::Result<Vec<Snapshot>> {
    let dir = zenith_snapshot::archiver::normalize_path(&state_dir())?
        .to_string_lossy()
        .into_owned();
    Ok(repo
        .snapshots()?
        .into_iter()
        .filter(|s| s.kind.as_deref() == Some(STATE_TYPE) && s.paths == [dir.clone()] && !s.has_tag("pre-restore"))
        .collect())
}

pub fn run(cmd: StateCommand, args: &RepoArgs, out: Out) -> CmdResult {
    match cmd {
        StateCommand::Save => save(args, out),
        StateCommand::Restore { snapshot } => {
            if !env::flag(env::RESTORE_ENABLED, true) {
                out.note("RESTORE_ENABLED is false: not restoring");
                return Ok(OK);
            }
            let repo = open(args, false)?;
            let snaps = state_snapshots(&repo)?;
            let snap = zenith_snapshot::snapshot::find(&snaps, &snapshot)?.clone();
            let opts = RestoreOptions {
                target: Some(state_dir()),
                backup: true,
                lock_wait: args.retry_lock,
                ..Default::default()
            };
            let bar = out.progress();
            let rep = restore(&repo, &snap, &opts, &bar)?;
            super::restore::print_report(&snap, &rep, out)?;
            Ok(if rep.damaged.is_empty() {
                OK
            } else {
                crate::exit::PROBLEM
            })
        }
        StateCommand::List => {
            let repo = open(args, false)?;
            let snaps = state_snapshots(&repo)?;
            if out.json() {
                out.print_json(&snaps.iter().map(super::inspect::view).collect::<Vec<_>>())?;
            } else {
                let mut t = table(&["name", "id", "time", "files", "size", "tags"]);
                for s in &snaps {
                    t.add_row(vec![
                        s.name.clone().unwrap_or_default(),
                        s.id.short(),
                        local_time(s.time),
                        s.summary.files.to_string(),
                        bytes(s.summary.bytes),
                        s.tags.join(","),
                    ]);
                }
                println!("{t}");
            }
            Ok(OK)
        }
        StateCommand::Info { snapshot } => {
            let repo = open(args, false)?;
            let snaps = state_snapshots(&repo)?;
            let s = zenith_snapshot::snapshot::find(&snaps, &snapshot)?;
            super::inspect::print_snapshot(s, out)
        }
        StateCommand::Clean { keep } => {
            let repo = open(args, false)?;
            let removed = clean(&repo, keep, args, out)?;
            if out.json() {
                out.print_json(&json!({"removed": removed}))?;
            } else {
                println!("removed {} old state snapshots", removed.len());
            }
            Ok(OK)
        }
    }
}

fn save(args: &RepoArgs, out: Out) -> CmdResult {
    if !env::flag(env::SNAPSHOT_ENABLED, true) {
        out.note("SNAPSHOT_ENABLED is false: no snapshot taken");
        return Ok(OK);
    }
    let retention = match env::var(env::STATE_SNAPSHOT_RETENTION) {
        None => DEFAULT_RETENTION,
        Some(v) => v.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
            usage(format!(
                "{}={v:?} is not a positive count",
                env::STATE_SNAPSHOT_RETENTION
            ))
        })?,
    };
    let dir = state_dir();
    if !dir.is_dir() {
        return Err(usage(format!(
            "the state directory {} does not exist (set {})",
            dir.display(),
            env::STATE_DIRECTORY
        ))
        .into());
    }
    let repo = open(args, true)?;
    let now = jiff::Timestamp::now();
    let name = format!(
        "state-{}",
        now.to_zoned(jiff::tz::TimeZone::UTC).strftime("%Y%m%d-%H%M%S")
    );
    let opts = CreateOptions {
        paths: vec![dir],
        kind: Some(STATE_TYPE.into()),
        name: Some(name),
        tags: vec![STATE_TYPE.into()],
        time: Some(now),
        lock_wait: args.retry_lock,
        ..Default::default()
    };
    let bar = out.progress();
    let report = create(&repo, &opts, &bar)?;
    super::create::print_report(&report, out)?;
    let removed = clean(&repo, retention, args, out)?;
    if !removed.is_empty() {
        out.note(format!(
            "retention {retention}: removed {} old state snapshots",
            removed.len()
        ));
    }
    Ok(if report.warnings.is_empty() {
        OK
    } else {
        crate::exit::INCOMPLETE
    })
}

/// Keep the newest `keep` state snapshots of this directory; prune if any went.
fn clean(repo: &Repository, keep: u32, args: &RepoArgs, out: Out) -> anyhow::Result<Vec<String>> {
    if keep == 0 {
        return Err(usage("keep at least one snapshot (clean N with N ≥ 1)"));
    }
    let _lock = Lock::acquire(repo.backend(), true, "state clean", args.retry_lock)?;
    let snaps = state_snapshots(repo)?;
    let items: Vec<_> = snaps.iter().map(Snapshot::forget_item).collect();
    let policy = KeepPolicy {
        last: Some(Keep::Count(keep)),
        ..Default::default()
    };
    let groups = zenith_snapshot::forget::apply_policy(
        &items,
        &policy,
        GroupBy::default(),
        jiff::Timestamp::now(),
        &jiff::tz::TimeZone::UTC,
    );
    let mut removed = Vec::new();
    for d in groups.iter().flat_map(|g| &g.decisions).filter(|d| !d.keep) {
        repo.remove_snapshot(&d.id.parse()?)?;
        removed.push(d.id.clone());
    }
    if !removed.is_empty() {
        let bar = out.progress();
        prune_locked(repo, &PruneOptions::default(), &bar)?;
    }
    Ok(removed)
}
