//! The state commands that talk to the daemon: `zenith rollback --with-state` (its report),
//! `zenith recover` (recovery and restore drills), `zenith schedule list` and
//! `zenith snapshot health`.

use anyhow::anyhow;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use zenith_server::api::state::RecoverResponse;
use zenith_server::state::drill::DrillReport;
use zenith_server::state::health::{HealthReport, Level};
use zenith_server::state::ops::StateOp;
use zenith_server::state::schedule::JobView;

use super::CmdResult;
use crate::client::{Client, DaemonArgs};
use crate::exit::{self, Failure};
use crate::output::{Out, bytes, local_time, table};

#[derive(Args, Debug)]
pub struct RecoverArgs {
    app: String,
    /// The snapshot set to restore: `latest`, a set id, or a snapshot id (its whole set).
    #[arg(long, default_value = "latest", value_name = "ID")]
    snapshot: String,
    /// `full` stops the whole app; `state-only` stops only the services whose state is restored.
    #[arg(long, value_enum, default_value = "full")]
    mode: Mode,
    /// Re-read every restored file and check it against the snapshot.
    #[arg(long)]
    validate: bool,
    /// Restore into a scratch directory and start the app there on a scratch port, check it,
    /// tear it down. Live data and traffic are not touched.
    #[arg(long, conflicts_with_all = ["mode", "validate"])]
    drill: bool,
    /// Print what would be restored and change nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    Full,
    StateOnly,
}

#[derive(Subcommand, Debug)]
pub enum ScheduleCommand {
    /// Every scheduled job with its next and last run.
    List,
}

pub fn recover(a: RecoverArgs, daemon: &DaemonArgs, out: Out) -> CmdResult {
    let client = Client::connect(daemon)?;
    let body = json!({
        "snapshot": a.snapshot,
        "mode": match a.mode { Mode::Full => "full", Mode::StateOnly => "state-only" },
        "validate": a.validate,
        "drill": a.drill,
        "dry_run": a.dry_run,
    });
    if !out.json() && !a.dry_run {
        let what = if a.drill { "restore drill" } else { "recovery" };
        eprintln!("{}: {what} of snapshot set {} under way…", a.app, a.snapshot);
    }
    let resp: RecoverResponse = client.post(&format!("/v1/apps/{}/recover", a.app), &body)?;
    if out.json() {
        out.print_json(&resp)?;
    }
    if let Some(d) = &resp.drill {
        if !out.json() {
            print_drill(d);
        }
        return if d.ok {
            Ok(exit::OK)
        } else {
            Err(Failure {
                code: exit::PROBLEM,
                error: anyhow!("{}: {}", a.app, d.summary()),
            })
        };
    }
    let op = resp.recovery.ok_or_else(|| anyhow!("the daemon sent no report"))?;
    if !out.json() {
        print_op(&op, resp.dry_run);
    }
    op_result(&op, out)
}

/// Prints a rollback's or recovery's report; a plan when it was a dry run.
pub fn print_op(op: &StateOp, dry_run: bool) {
    if dry_run {
        println!(
            "{}: would stop its writers, snapshot their state (pre-restore), then restore set {}:",
            op.app, op.set
        );
        for r in &op.restores {
            println!("  {} {} ← snapshot {}", r.service, r.dir.display(), &r.snapshot[..8]);
        }
        println!("(dry run: nothing changed)");
        return;
    }
    for s in &op.steps {
        println!("  {:<22} {:>7.2}s  {}", s.name, s.seconds, s.detail);
    }
    if !op.backups.is_empty() {
        println!(
            "pre-restore snapshots (set {}): {}",
            op.id,
            op.backups
                .iter()
                .map(|(d, id)| format!("{} {}", d.display(), &id[..8]))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

pub fn op_result(op: &StateOp, out: Out) -> CmdResult {
    match &op.error {
        None => {
            if !out.json() {
                println!("{}: state restored from set {} and the app is healthy", op.app, op.set);
            }
            Ok(exit::OK)
        }
        Some(e) => Err(Failure {
            code: exit::PROBLEM,
            error: anyhow!(
                "{}: {e} (the state before is in pre-restore set {}: `zenith recover {} --snapshot {}` brings it back)",
                op.app,
                op.id,
                op.app,
                op.id
            ),
        }),
    }
}

fn print_drill(d: &DrillReport) {
    for s in &d.steps {
        println!("  {:<18} {:>7.2}s  {}", s.name, s.seconds, s.detail);
    }
    println!("{}: {}", d.app, d.summary());
}

pub fn schedule(cmd: ScheduleCommand, daemon: &DaemonArgs, out: Out) -> CmdResult {
    let ScheduleCommand::List = cmd;
    let client = Client::connect(daemon)?;
    let jobs: Vec<JobView> = client.get("/v1/schedules")?;
    if out.json() {
        out.print_json(&jobs)?;
        return Ok(exit::OK);
    }
    let mut t = table(&["app", "schedule", "job", "cron", "next", "last", "result", "took"]);
    for j in &jobs {
        t.add_row(vec![
            if j.app.is_empty() {
                "(daemon)".into()
            } else {
                j.app.clone()
            },
            j.name.clone(),
            j.job.clone(),
            format!("{} {}", j.cron, j.timezone),
            j.next.map(local_time).unwrap_or_else(|| "never".into()),
            j.last_run_at.map(local_time).unwrap_or_else(|| "-".into()),
            match j.last_ok {
                None => "-".into(),
                Some(true) => "ok".into(),
                Some(false) => format!("FAILED: {}", j.last_message),
            },
            j.last_seconds.map(|s| format!("{s:.1}s")).unwrap_or_default(),
        ]);
    }
    println!("{t}");
    Ok(exit::OK)
}

pub fn health(daemon: &DaemonArgs, out: Out) -> CmdResult {
    let client = Client::connect(daemon)?;
    let r: HealthReport = client.get("/v1/snapshots/health")?;
    if out.json() {
        out.print_json(&r)?;
    } else {
        let mut t = table(&[
            "app",
            "type",
            "status",
            "snapshots",
            "newest",
            "size",
            "ratio",
            "verify",
            "why",
        ]);
        for h in &r.types {
            t.add_row(vec![
                h.app.clone(),
                h.kind.clone(),
                h.status.as_str().to_uppercase(),
                h.snapshots.to_string(),
                h.latest.map(local_time).unwrap_or_else(|| "-".into()),
                h.size_bytes.map(bytes).unwrap_or_default(),
                h.compression_ratio.map(|x| format!("{x:.2}")).unwrap_or_default(),
                match h.verify_ok {
                    None => "-".into(),
                    Some(true) => "ok".into(),
                    Some(false) => "FAILED".into(),
                },
                h.reasons.join("; "),
            ]);
        }
        println!("{t}");
        for d in &r.drills {
            println!(
                "{} drill {}: {} ({})",
                d.app,
                d.status.as_str().to_uppercase(),
                d.message,
                local_time(d.at)
            );
        }
        println!("overall: {}", r.status.as_str());
    }
    Ok(if r.status == Level::Critical {
        exit::PROBLEM
    } else {
        exit::OK
    })
}
