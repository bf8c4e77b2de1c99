//! `zenith snapshot create`.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;
use zenith_snapshot::archiver::{CreateOptions, CreateReport, ParentChoice, create};

use super::CmdResult;
use crate::exit::{INCOMPLETE, OK};
use crate::output::{Out, bytes};
use crate::repo_open::RepoArgs;

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Files and directories to snapshot.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// A label: system, config, data, models, full, or any other.
    #[arg(long = "type", value_name = "LABEL")]
    pub kind: Option<String>,
    /// Tag the snapshot (repeat, or separate with commas).
    #[arg(long, value_name = "TAG")]
    pub tag: Vec<String>,
    /// A name to refer to the snapshot by.
    #[arg(long)]
    pub name: Option<String>,
    /// Leave out paths matching this glob (a name like `*.tmp`, or a path pattern with `/`).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Record this host name instead of the machine's.
    #[arg(long)]
    pub host: Option<String>,
    /// Compare against this snapshot instead of the newest one of the same host and paths.
    #[arg(long, value_name = "SNAPSHOT")]
    pub parent: Option<String>,
    /// Read every file, even those unchanged since the parent snapshot.
    #[arg(long)]
    pub force: bool,
    /// Compression threads, and as many file-reading threads (default: one of each per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

pub fn run(a: CreateArgs, args: &RepoArgs, out: Out) -> CmdResult {
    let repo = args.open()?;
    let parent = if a.force {
        ParentChoice::None
    } else if let Some(p) = &a.parent {
        ParentChoice::Id(repo.find_snapshot(p)?.id)
    } else {
        ParentChoice::Auto
    };
    let opts = CreateOptions {
        paths: a.paths,
        kind: a.kind,
        name: a.name,
        tags: a.tag,
        host: a.host,
        excludes: a.exclude,
        parent,
        time: None,
        threads: a.threads,
        lock_wait: args.retry_lock,
    };
    let bar = out.progress();
    let report = create(&repo, &opts, &bar)?;
    print_report(&report, out)?;
    Ok(if report.warnings.is_empty() { OK } else { INCOMPLETE })
}

pub fn print_report(r: &CreateReport, out: Out) -> anyhow::Result<()> {
    let s = &r.snapshot;
    let m = &s.summary;
    if out.json() {
        out.print_json(&json!({
            "id": s.id,
            "short_id": s.id.short(),
            "time": s.time,
            "paths": s.paths,
            "summary": m,
            "parent": s.parent,
            "warnings": r.warnings,
        }))?;
        return Ok(());
    }
    println!("snapshot {} saved", s.id.short());
    println!(
        "  files: {} ({} new, {} changed, {} unchanged), dirs: {}",
        m.files, m.files_new, m.files_changed, m.files_unmodified, m.dirs
    );
    println!("  read: {} of {} in the snapshot", bytes(m.bytes_read), bytes(m.bytes));
    println!(
        "  added: {} ({} stored after dedup, compression and encryption)",
        bytes(m.bytes_added),
        bytes(m.bytes_added_stored)
    );
    println!("  took {:.2}s", m.duration_secs);
    if !r.warnings.is_empty() {
        out.note(format!(
            "{} warnings (above): those paths are missing from the snapshot or were changing",
            r.warnings.len()
        ));
    }
    Ok(())
}
