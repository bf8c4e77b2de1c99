//! `zenith rollout history|status|promote|pause|resume|abort|retry APP`: the revision
//! history, where a rollout stands (live with `--watch`), and a person's decisions on a canary
//! or blue-green rollout in progress.

use std::io::IsTerminal;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;
use zenith_rollout::Phase;
use zenith_server::api::apps::{AppSummary, RevisionSummary};
use zenith_server::api::rollout::RolloutResponse;

use super::CmdResult;
use super::apps::{print_status, table};
use super::rollout_view::render;
use crate::client::{Client, DaemonArgs};
use crate::exit;
use crate::output::Out;

#[derive(Subcommand, Debug)]
pub enum RolloutCommand {
    /// The app's revisions, newest first, with how each ended.
    History { app: String },
    /// Where the rollout stands: step, weight, live metrics per version against the
    /// thresholds, and the verdict history.
    Status(StatusArgs),
    /// Go on to the next step now (with --full: straight to 100 %); switch a blue-green
    /// rollout that waits for promotion; retire the old version of a switched one early.
    Promote {
        app: String,
        #[arg(long)]
        full: bool,
    },
    /// Hold the rollout at its current weight; checks stop until `resume`.
    Pause { app: String },
    /// Continue a paused rollout with a fresh check window.
    Resume { app: String },
    /// Send all traffic back to the stable version now and stop the new one.
    Abort { app: String },
    /// Roll the last failed revision out again.
    Retry { app: String },
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    app: String,
    /// Keep showing the rollout until it completes or fails (exit 1 when it fails).
    #[arg(long)]
    watch: bool,
}

pub fn run(cmd: RolloutCommand, daemon: &DaemonArgs, out: Out) -> CmdResult {
    let client = Client::connect(daemon)?;
    let (app, action, full) = match cmd {
        RolloutCommand::History { app } => return history(&client, &app, out),
        RolloutCommand::Status(args) => return status(&client, &args, out),
        RolloutCommand::Promote { app, full } => (app, "promote", full),
        RolloutCommand::Pause { app } => (app, "pause", false),
        RolloutCommand::Resume { app } => (app, "resume", false),
        RolloutCommand::Abort { app } => (app, "abort", false),
        RolloutCommand::Retry { app } => (app, "retry", false),
    };
    let resp: RolloutResponse = client.post(&format!("/v1/apps/{app}/rollout/{action}"), &json!({ "full": full }))?;
    if out.json() {
        out.print_json(&resp)?;
    } else {
        println!("{app}: {}", resp.message);
    }
    Ok(exit::OK)
}

fn history(client: &Client, app: &str, out: Out) -> CmdResult {
    let revs: Vec<RevisionSummary> = client.get(&format!("/v1/apps/{app}/revisions"))?;
    if out.json() {
        out.print_json(&revs)?;
        return Ok(exit::OK);
    }
    let mut t = table(&["REVISION", "CREATED", "STATUS", "DIGEST", "SOURCE", "MESSAGE"]);
    for r in &revs {
        t.add_row(vec![
            format!("r{}", r.number),
            r.created_at.strftime("%Y-%m-%d %H:%M:%S").to_string(),
            r.status.as_str().to_string(),
            r.digest.clone(),
            r.source.clone(),
            r.message.clone(),
        ]);
    }
    println!("{t}");
    Ok(exit::OK)
}

fn status(client: &Client, args: &StatusArgs, out: Out) -> CmdResult {
    // A live view redraws in place on a terminal; piped output gets one block per refresh.
    let redraw = args.watch && !out.json() && std::io::stdout().is_terminal();
    loop {
        let s: AppSummary = client.get(&format!("/v1/apps/{}", args.app))?;
        let done = matches!(s.status.phase, Phase::Complete | Phase::Failed | Phase::Stopped);
        if out.json() {
            out.print_json(&s.status)?;
        } else {
            if redraw {
                print!("\x1b[2J\x1b[H");
            }
            match &s.status.rollout {
                Some(r) => {
                    println!(
                        "{}: {} ({})",
                        s.status.app,
                        super::apps::revisions(&s.status),
                        s.status.phase
                    );
                    if !s.status.message.is_empty() {
                        println!("{}", s.status.message);
                    }
                    print!("{}", render(r, jiff::Timestamp::now().as_millisecond()));
                }
                None => print_status(&s.status),
            }
        }
        if !args.watch || done {
            return Ok(if s.status.phase == Phase::Failed {
                exit::PROBLEM
            } else {
                exit::OK
            });
        }
        std::thread::sleep(Duration::from_secs(1));
        if !out.json() && !redraw {
            println!("---");
        }
    }
}
