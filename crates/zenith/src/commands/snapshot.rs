//! `zenith snapshot …`: the argument definitions and dispatch to one module per command.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::CmdResult;
use crate::output::Out;
use crate::repo_open::RepoArgs;

#[derive(Subcommand, Debug)]
pub enum SnapshotCommand {
    /// Snapshot one or more paths.
    Create(super::create::CreateArgs),
    /// Snapshot a Docker container: its configuration, its file changes and, with
    /// --with-volumes, its volumes' data (restore with `snapshot restore ID --container NAME`).
    Container(super::container::ContainerArgs),
    /// List snapshots.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// Only the newest N (per host and paths).
        #[arg(long, value_name = "N")]
        latest: Option<usize>,
    },
    /// Show one snapshot's metadata (ID, name, tag or `latest`).
    Show { snapshot: String },
    /// Add or remove tags.
    Tag {
        /// The snapshot: id, name, tag or `latest`.
        snapshot: String,
        /// Tags to add (repeat, or separate with commas).
        #[arg(long, value_name = "TAG")]
        add: Vec<String>,
        /// Tags to remove.
        #[arg(long, value_name = "TAG")]
        remove: Vec<String>,
    },
    /// List the files of a snapshot (under PATH, if given).
    Ls {
        /// The snapshot: id, name, tag or `latest`.
        snapshot: String,
        /// Only this path (as saved, e.g. /srv/app/data/db) and what is below it.
        path: Option<String>,
        /// Also show type, mode, size and time.
        #[arg(short, long)]
        long: bool,
    },
    /// Paths added, removed and changed between two snapshots.
    Diff {
        /// The older snapshot.
        a: String,
        /// The newer snapshot.
        b: String,
    },
    /// Check the repository's integrity.
    Verify(super::verify::VerifyArgs),
    /// The daemon's view of snapshot health per app and type: age, size, last integrity check
    /// and drill against the apps' thresholds (exit 1 on critical).
    Health,
    /// Restore a snapshot.
    Restore(super::restore::RestoreArgs),
    /// Remove snapshots by id or by retention policy.
    Forget(super::forget::ForgetArgs),
    /// Remove data no snapshot uses; repack partly used packs.
    Prune(super::forget::PruneArgs),
    /// Copy snapshots to another repository.
    Copy(super::copy::CopyArgs),
    /// Push a snapshot to an OCI registry as an encrypted artifact.
    Push(super::push::PushArgs),
    /// Pull a snapshot pushed to an OCI registry into the repository.
    Pull(super::push::PullArgs),
}

/// Filters shared by list and forget.
#[derive(Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Only snapshots of this type label.
    #[arg(long = "type", value_name = "LABEL")]
    pub kind: Option<String>,
    /// Only snapshots with these tags (comma-separated tags must all match; repeat to OR).
    #[arg(long, value_name = "TAG[,TAG]")]
    pub tag: Vec<String>,
    /// Only snapshots from this host.
    #[arg(long, value_name = "HOST")]
    pub host: Vec<String>,
    /// Only snapshots that include this path.
    #[arg(long, value_name = "PATH")]
    pub path: Vec<PathBuf>,
}

impl FilterArgs {
    pub fn to_filter(&self) -> zenith_snapshot::SnapshotFilter {
        zenith_snapshot::SnapshotFilter {
            kind: self.kind.clone(),
            hosts: self.host.clone(),
            tags: self.tag.clone(),
            paths: self
                .path
                .iter()
                .map(|p| {
                    std::path::absolute(p)
                        .unwrap_or_else(|_| p.clone())
                        .to_string_lossy()
                        .trim_end_matches('/')
                        .to_string()
                })
                .collect(),
            name: None,
        }
    }
}

pub fn run(cmd: SnapshotCommand, args: &RepoArgs, out: Out) -> CmdResult {
    use super::{copy, create, forget, inspect, restore, verify};
    match cmd {
        SnapshotCommand::Create(a) => create::run(a, args, out),
        SnapshotCommand::Container(a) => super::container::snapshot(a, args, out),
        SnapshotCommand::List { filter, latest } => inspect::list(&filter, latest, args, out),
        SnapshotCommand::Show { snapshot } => inspect::show(&snapshot, args, out),
        SnapshotCommand::Tag { snapshot, add, remove } => inspect::tag(&snapshot, &add, &remove, args, out),
        SnapshotCommand::Ls { snapshot, path, long } => inspect::ls(&snapshot, path.as_deref(), long, args, out),
        SnapshotCommand::Diff { a, b } => inspect::diff(&a, &b, args, out),
        SnapshotCommand::Verify(a) => verify::run(a, args, out),
        SnapshotCommand::Health => unreachable!("main sends `snapshot health` to the daemon"),
        SnapshotCommand::Restore(a) => restore::run(a, args, out),
        SnapshotCommand::Forget(a) => forget::forget(a, args, out),
        SnapshotCommand::Prune(a) => forget::prune(a, args, out),
        SnapshotCommand::Copy(a) => copy::run(a, args, out),
        SnapshotCommand::Push(a) => super::push::push(a, args, out),
        SnapshotCommand::Pull(a) => super::push::pull(a, args, out),
    }
}
