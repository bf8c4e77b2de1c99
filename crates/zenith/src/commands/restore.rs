//! `zenith snapshot restore`.

use std::path::PathBuf;

use clap::Args;
use zenith_snapshot::restorer::{RestoreOptions, RestoreReport, restore};

use super::CmdResult;
use crate::exit::{OK, PROBLEM};
use crate::output::{Out, bytes};
use crate::repo_open::RepoArgs;

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The snapshot: id, name, tag or `latest`.
    pub snapshot: String,
    /// Where to restore (default: back where it came from).
    #[arg(long, short)]
    pub target: Option<PathBuf>,
    /// Restore only this path (repeatable); relative to the snapshot's directory or absolute.
    #[arg(long, value_name = "PATH")]
    pub include: Vec<String>,
    /// Re-read every restored file and compare it with the snapshot.
    #[arg(long)]
    pub verify: bool,
    /// Do not take a pre-restore snapshot of a non-empty target.
    #[arg(long)]
    pub no_backup: bool,
    /// Writer threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Recreate the container of a container snapshot under this name, with its files and
    /// volumes' data (instead of restoring files to a directory).
    #[arg(long, value_name = "NEW_NAME", conflicts_with_all = ["target", "include", "verify", "no_backup"])]
    pub container: Option<String>,
    /// Start the recreated container (default: as the original was when snapshotted).
    #[arg(long, requires = "container", conflicts_with = "no_start")]
    pub start: bool,
    /// Leave the recreated container created but stopped.
    #[arg(long, requires = "container")]
    pub no_start: bool,
    /// Create the container's named volumes as PREFIX<name> (when the originals exist).
    #[arg(long, value_name = "PREFIX", requires = "container")]
    pub volume_prefix: Option<String>,
}

pub fn run(a: RestoreArgs, args: &RepoArgs, out: Out) -> CmdResult {
    if let Some(name) = a.container {
        let how = super::container::RestoreAs {
            name,
            start: (a.start || a.no_start).then_some(a.start),
            volume_prefix: a.volume_prefix,
            threads: a.threads,
        };
        return super::container::restore(&a.snapshot, how, args, out);
    }
    let repo = args.open()?;
    let snap = repo.find_snapshot(&a.snapshot)?;
    let opts = RestoreOptions {
        target: a.target,
        includes: a.include,
        verify: a.verify,
        backup: !a.no_backup,
        threads: a.threads,
        lock_wait: args.retry_lock,
    };
    let bar = out.progress();
    let rep = restore(&repo, &snap, &opts, &bar)?;
    print_report(&snap, &rep, out)?;
    Ok(if rep.damaged.is_empty() { OK } else { PROBLEM })
}

pub fn print_report(snap: &zenith_snapshot::Snapshot, rep: &RestoreReport, out: Out) -> anyhow::Result<()> {
    if out.json() {
        out.print_json(&serde_json::json!({"snapshot": snap.id, "report": rep}))?;
        return Ok(());
    }
    for w in &rep.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(p) = rep.pre_restore_snapshot {
        println!("saved what was there as snapshot {} (tag pre-restore)", p.short());
    }
    println!(
        "restored snapshot {} to {}: {} files, {} dirs, {}",
        snap.id.short(),
        rep.target.display(),
        rep.files,
        rep.dirs,
        bytes(rep.bytes)
    );
    if let Some(n) = rep.verified_files {
        println!("verified {n} files against the snapshot");
    }
    for d in &rep.damaged {
        println!("DAMAGED {d}");
    }
    if !rep.damaged.is_empty() {
        println!("{} files could not be restored in full", rep.damaged.len());
    }
    Ok(())
}
