//! `zenith snapshot container` and `zenith snapshot restore --container`: container snapshots,
//! computed by `zenith-container` against the Docker engine's API and rendered here.

use clap::Args;
use serde_json::json;
use zenith_container::{RestoreOptions, SnapshotOptions, restore_container, snapshot_container};

use super::CmdResult;
use crate::exit::{Failure, INCOMPLETE, OK};
use crate::output::{Out, bytes};
use crate::repo_open::RepoArgs;

#[derive(Args, Debug)]
pub struct ContainerArgs {
    /// The container: its name or id.
    pub container: String,
    /// Tag the snapshot (repeat, or separate with commas); `container=NAME` is always added.
    #[arg(long, value_name = "TAG")]
    pub tag: Vec<String>,
    /// Also save the data of the container's volumes (bind mounts are host directories:
    /// snapshot those with `snapshot create`).
    #[arg(long)]
    pub with_volumes: bool,
    /// Record this host name instead of the machine's.
    #[arg(long)]
    pub host: Option<String>,
    /// Compression threads, and as many file-reading threads (default: one of each per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// How `snapshot restore --container` should recreate the container.
#[derive(Debug)]
pub struct RestoreAs {
    pub name: String,
    pub start: Option<bool>,
    pub volume_prefix: Option<String>,
    pub threads: usize,
}

pub fn snapshot(a: ContainerArgs, args: &RepoArgs, out: Out) -> CmdResult {
    let repo = args.open()?;
    let opts = SnapshotOptions {
        container: a.container,
        tags: a.tag,
        with_volumes: a.with_volumes,
        host: a.host,
        staging_dir: None,
        threads: a.threads,
        lock_wait: args.retry_lock,
    };
    let bar = out.progress();
    let report = block_on(async {
        let docker = zenith_container::connect().await?;
        snapshot_container(&docker, &repo, &opts, &bar).await
    })?;
    let s = &report.snapshot;
    let m = &s.summary;
    if out.json() {
        out.print_json(&json!({
            "id": s.id,
            "short_id": s.id.short(),
            "time": s.time,
            "tags": s.tags,
            "container": report.container,
            "container_id": report.container_id,
            "image": report.image,
            "running": report.running,
            "files": report.files,
            "deleted": report.deleted,
            "volumes": report.volumes,
            "not_captured": report.not_captured,
            "bytes_fetched": report.bytes_fetched,
            "summary": m,
            "warnings": report.warnings,
        }))?;
    } else {
        let state = if report.running { "running" } else { "stopped" };
        println!(
            "snapshot {} saved: container {} ({state}), image {}",
            s.id.short(),
            report.container,
            report.image
        );
        println!(
            "  changed paths: {}, deleted paths: {}, volumes: {}",
            report.files.len(),
            report.deleted.len(),
            if report.volumes.is_empty() {
                "none".to_string()
            } else {
                report.volumes.join(", ")
            }
        );
        println!("  files: {}, dirs: {}, {}", m.files, m.dirs, bytes(m.bytes));
        println!(
            "  added: {} ({} stored after dedup, compression and encryption)",
            bytes(m.bytes_added),
            bytes(m.bytes_added_stored)
        );
        println!("  took {:.2}s", m.duration_secs);
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
        if !report.not_captured.is_empty() {
            out.note(format!("not in the snapshot: {}", report.not_captured.join("; ")));
        }
    }
    Ok(if report.warnings.is_empty() { OK } else { INCOMPLETE })
}

pub fn restore(snapshot: &str, how: RestoreAs, args: &RepoArgs, out: Out) -> CmdResult {
    let repo = args.open()?;
    let snap = repo.find_snapshot(snapshot)?;
    let opts = RestoreOptions {
        name: how.name,
        start: how.start,
        volume_prefix: how.volume_prefix,
        staging_dir: None,
        threads: how.threads,
        lock_wait: args.retry_lock,
    };
    let bar = out.progress();
    let rep = block_on(async {
        let docker = zenith_container::connect().await?;
        restore_container(&docker, &repo, &snap, &opts, &bar).await
    })?;
    if out.json() {
        out.print_json(&json!({"snapshot": snap.id, "report": rep}))?;
        return Ok(OK);
    }
    for w in &rep.warnings {
        eprintln!("warning: {w}");
    }
    let short_id: String = rep.container_id.chars().take(12).collect();
    println!(
        "restored snapshot {} as container {} ({short_id}), image {}, {}",
        snap.id.short(),
        rep.container,
        rep.image,
        if rep.started { "started" } else { "not started" }
    );
    if !rep.volumes_created.is_empty() {
        println!("  volumes created: {}", rep.volumes_created.join(", "));
    }
    println!(
        "  wrote {} changed paths and the volumes' data ({})",
        rep.files.len(),
        bytes(rep.bytes_uploaded)
    );
    Ok(OK)
}

/// Runs the engine work on a runtime of this thread.
fn block_on<T>(work: impl Future<Output = zenith_container::Result<T>>) -> Result<T, Failure> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    rt.block_on(work).map_err(|e| match e {
        // The engine's own errors keep their exit codes (no repository, wrong password, …).
        zenith_container::Error::Snapshot(e) => e.into(),
        other => anyhow::Error::from(other).into(),
    })
}
