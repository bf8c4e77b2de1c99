//! `zenith deploy` and `zenith rollback`: send a spec (or a revision to go back to), print
//! the plan, then follow the rollout until it completes or fails.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::Args;
use serde_json::json;
use zenith_server::api::apps::{AppSummary, DeployResponse};
use zenith_server::store::RevisionStatus;

use super::CmdResult;
use super::rollout_view::{RolloutSeen, rollout_lines};
use crate::client::{Client, DaemonArgs};
use crate::exit::{self, Failure};
use crate::output::Out;

#[derive(Args, Debug)]
pub struct DeployArgs {
    /// The app spec.
    #[arg(short = 'f', long = "file", default_value = "zenith.toml", value_name = "FILE")]
    file: PathBuf,
    /// Emergency deploy: canary and blue-green services skip their steps and analysis and
    /// switch once healthy (recorded as forced in the audit log).
    #[arg(long)]
    force: bool,
    /// Percent of traffic the canary's first step gets (later steps at or below it are dropped).
    #[arg(long, value_name = "PERCENT")]
    initial_traffic: Option<u32>,
    /// Time between canary and blue-green checks, overriding the spec's `interval`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    check_interval: Option<Duration>,
    #[command(flatten)]
    follow: Follow,
}

/// Shared by deploy and rollback: dry runs and how long to follow the rollout.
#[derive(Args, Debug)]
struct Follow {
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Return once the rollout has begun instead of following it.
    #[arg(long)]
    no_wait: bool,
    /// Give up following after this long (the rollout itself goes on).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

#[derive(Args, Debug)]
pub struct RollbackArgs {
    app: String,
    /// The revision to go back to (default: the newest earlier one that completed).
    revision: Option<u64>,
    /// Also restore the state snapshots taken before that revision was deployed (the app is
    /// stopped meanwhile; what is there now is kept as a pre-restore snapshot).
    #[arg(long)]
    with_state: bool,
    #[command(flatten)]
    follow: Follow,
}

pub fn deploy(args: DeployArgs, daemon: &DaemonArgs, out: Out) -> CmdResult {
    let mut spec = zenith_spec::load_with_retention(&args.file).map_err(|e| Failure {
        code: exit::USAGE,
        error: anyhow!("{e}"),
    })?;
    if args.initial_traffic.is_some() || args.check_interval.is_some() {
        spec = zenith_spec::overrides::override_rollout(&spec, args.initial_traffic, args.check_interval).map_err(
            |e| Failure {
                code: exit::USAGE,
                error: anyhow!("{}: {e}", args.file.display()),
            },
        )?;
    }
    let client = Client::connect(daemon)?;
    let source = std::fs::canonicalize(&args.file).unwrap_or(args.file.clone());
    let body = json!({
        "spec": spec,
        "source": source.display().to_string(),
        "dry_run": args.follow.dry_run,
        "force": args.force,
    });
    let resp: DeployResponse = client.post(&format!("/v1/apps/{}/deploy", spec.name), &body)?;
    finish(&client, &spec.name, resp, &args.follow, out)
}

pub fn rollback(args: RollbackArgs, daemon: &DaemonArgs, out: Out) -> CmdResult {
    let client = Client::connect(daemon)?;
    let body = json!({
        "revision": args.revision,
        "dry_run": args.follow.dry_run,
        "with_state": args.with_state,
    });
    if args.with_state && !args.follow.dry_run && !out.json() {
        eprintln!(
            "{}: rollback with state under way: stop, pre-restore snapshot, restore, start…",
            args.app
        );
    }
    let resp: DeployResponse = client.post(&format!("/v1/apps/{}/rollback", args.app), &body)?;
    if let Some(op) = &resp.state_op {
        if out.json() {
            out.print_json(&resp)?;
        } else {
            super::recover::print_op(op, resp.dry_run);
        }
        return if resp.dry_run {
            Ok(exit::OK)
        } else {
            super::recover::op_result(op, out)
        };
    }
    if !args.follow.dry_run {
        out.note("state directories are left as they are: this rollback changes code and config only");
    }
    finish(&client, &args.app, resp, &args.follow, out)
}

fn finish(client: &Client, app: &str, resp: DeployResponse, follow: &Follow, out: Out) -> CmdResult {
    if resp.unchanged {
        if out.json() {
            out.print_json(&resp)?;
        } else {
            println!("{app}: unchanged, r{} is already the desired revision", resp.revision);
        }
        return Ok(exit::OK);
    }
    if resp.dry_run {
        if out.json() {
            out.print_json(&resp)?;
        } else {
            print!("{}", resp.plan);
            println!("(dry run: nothing changed)");
        }
        return Ok(exit::OK);
    }
    if !out.json() {
        print!("{}", resp.plan);
        if let Some(set) = &resp.state_set {
            for t in &resp.snapshots {
                println!(
                    "state snapshot before deploy: {}/{} {} → {} ({}, {} added, {:.2}s) in set {set}",
                    app,
                    t.service,
                    t.dir.display(),
                    &t.snapshot[..8],
                    crate::output::bytes(t.bytes),
                    crate::output::bytes(t.added),
                    t.seconds
                );
            }
        }
    }
    if follow.no_wait {
        if out.json() {
            out.print_json(&resp)?;
        }
        return Ok(exit::OK);
    }
    let (status, summary) = wait(client, app, resp.revision, follow.timeout, out)?;
    if out.json() {
        out.print_json(&json!({ "revision": resp.revision, "result": status, "status": summary.status }))?;
    }
    match status {
        RevisionStatus::Complete => {
            if !out.json() {
                println!("{app}: r{} complete", resp.revision);
            }
            Ok(exit::OK)
        }
        _ => {
            let why = summary
                .revisions
                .iter()
                .find(|r| r.number == resp.revision)
                .map(|r| r.message.clone())
                .unwrap_or_default();
            Err(Failure {
                code: exit::PROBLEM,
                error: anyhow!("{app}: r{} {}: {why}", resp.revision, status.as_str()),
            })
        }
    }
}

/// Follows the rollout of `revision`, printing a line whenever the replica counts change.
pub fn wait(
    client: &Client,
    app: &str,
    revision: u64,
    timeout: Duration,
    out: Out,
) -> Result<(RevisionStatus, AppSummary), Failure> {
    let start = Instant::now();
    let mut last = String::new();
    let mut seen_checks = RolloutSeen::default();
    loop {
        let s: AppSummary = client.get(&format!("/v1/apps/{app}"))?;
        let status = s.revisions.iter().find(|r| r.number == revision).map(|r| r.status);
        let line = s
            .status
            .services
            .iter()
            .map(|svc| {
                let new = svc.replicas.iter().filter(|r| r.revision == revision).count();
                let ready = svc
                    .replicas
                    .iter()
                    .filter(|r| r.revision == revision && r.state == zenith_rollout::ReplicaState::Ready)
                    .count();
                let old = svc.replicas.len() - new;
                format!(
                    "{}: {ready}/{} ready of r{revision}, {old} old",
                    svc.name, svc.desired_replicas
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        if line != last && !out.json() {
            out.note(format!("  {line}"));
            last = line;
        }
        if let Some(r) = s.status.rollout.as_ref().filter(|r| r.revision == revision)
            && !out.json()
        {
            for l in rollout_lines(r, &mut seen_checks) {
                out.note(format!("  {l}"));
            }
        }
        match status {
            Some(st) if st.is_final() => {
                return Ok((st, s));
            }
            None => {
                return Err(Failure {
                    code: exit::PROBLEM,
                    error: anyhow!("revision {revision} of {app} disappeared from the history"),
                });
            }
            _ => {}
        }
        if start.elapsed() > timeout {
            return Err(Failure {
                code: exit::PROBLEM,
                error: anyhow!(
                    "r{revision} of {app} is still rolling out after {}; `zenith rollout status {app} --watch` follows it",
                    humantime::format_duration(timeout)
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}
