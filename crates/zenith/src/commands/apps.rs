//! Reading the daemon's view: `zenith apps` and `zenith app status`.

use std::time::Duration;

use clap::Subcommand;
use comfy_table::Table;
use zenith_rollout::AppStatus;
use zenith_server::api::apps::AppSummary;

use super::CmdResult;
use crate::client::{Client, DaemonArgs};
use crate::exit;
use crate::output::Out;

pub fn list(daemon: &DaemonArgs, out: Out) -> CmdResult {
    let client = Client::connect(daemon)?;
    let apps: Vec<AppStatus> = client.get("/v1/apps")?;
    if out.json() {
        out.print_json(&apps)?;
        return Ok(exit::OK);
    }
    let mut t = table(&["APP", "REVISION", "PHASE", "READY", "MESSAGE"]);
    for a in &apps {
        let ready: u32 = a.services.iter().map(|s| s.ready_replicas).sum();
        let want: u32 = a.services.iter().map(|s| s.desired_replicas).sum();
        t.add_row(vec![
            a.app.clone(),
            revisions(a),
            a.phase.to_string(),
            format!("{ready}/{want}"),
            a.message.clone(),
        ]);
    }
    println!("{t}");
    Ok(exit::OK)
}

pub(super) fn revisions(a: &AppStatus) -> String {
    match (a.active_revision, a.desired_revision) {
        (Some(x), Some(y)) if x == y => format!("r{x}"),
        (Some(x), Some(y)) => format!("r{x} → r{y}"),
        (None, Some(y)) => format!("→ r{y}"),
        _ => "-".into(),
    }
}

pub(super) fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t.set_header(header.to_vec());
    t
}

#[derive(Subcommand, Debug)]
pub enum AppCommand {
    /// Replicas, health, restarts, revision, ports and uptime of one app.
    Status { app: String },
}

pub fn app(cmd: AppCommand, daemon: &DaemonArgs, out: Out) -> CmdResult {
    let AppCommand::Status { app } = cmd;
    let client = Client::connect(daemon)?;
    let s: AppSummary = client.get(&format!("/v1/apps/{app}"))?;
    if out.json() {
        out.print_json(&s.status)?;
        return Ok(exit::OK);
    }
    print_status(&s.status);
    Ok(exit::OK)
}

pub(super) fn print_status(a: &AppStatus) {
    println!("app:      {}", a.app);
    println!("revision: {}", revisions(a));
    println!("phase:    {}", a.phase);
    if !a.message.is_empty() {
        println!("message:  {}", a.message);
    }
    let now = jiff::Timestamp::now().as_millisecond();
    for svc in &a.services {
        let port = svc.port.map(|p| format!(", public port {p}")).unwrap_or_default();
        println!(
            "\n{}: {}/{} ready{port}",
            svc.name, svc.ready_replicas, svc.desired_replicas
        );
        let mut t = table(&[
            "REPLICA",
            "REV",
            "STATE",
            "PORT",
            "PID",
            "RESTARTS",
            "UPTIME",
            "LAST PROBE",
        ]);
        for r in &svc.replicas {
            let up = Duration::from_secs(((now - r.started_at_ms).max(0) / 1000) as u64);
            t.add_row(vec![
                r.id.clone(),
                format!("r{}", r.revision),
                r.state.to_string(),
                r.port.to_string(),
                r.pid.map(|p| p.to_string()).unwrap_or_default(),
                r.restarts.to_string(),
                humantime::format_duration(up).to_string(),
                r.last_probe.clone().unwrap_or_default(),
            ]);
        }
        println!("{t}");
        for e in &svc.events {
            println!("  {e}");
        }
    }
}
