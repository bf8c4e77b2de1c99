//! The `zenith` command line: parses arguments, opens repositories, calls the engine crates
//! and renders their results. Exit codes live in `exit.rs`.

mod client;
mod commands;
mod env;
mod exit;
mod output;
mod repo_open;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::output::{Format, Out};
use crate::repo_open::RepoArgs;

/// zenith keeps running services safe across change: encrypted, deduplicated snapshots of
/// their state, with retention, verification and restore; a daemon that supervises apps,
/// routes their traffic, rolls out revisions and rolls them back.
#[derive(Parser, Debug)]
#[command(name = "zenith", version, max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    repo: RepoArgs,
    #[command(flatten)]
    daemon: client::DaemonArgs,
    /// Output format of listings and reports.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    output_format: Format,
    /// No notes, warnings' summaries or progress on stderr (results still go to stdout).
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Never draw progress bars.
    #[arg(long, global = true)]
    no_progress: bool,
    #[command(subcommand)]
    command: Command,
}

/// `zenith … | head` closes stdout early; end quietly as other Unix tools do instead of
/// printing a panic.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create and manage repositories and their keys.
    #[command(subcommand)]
    Repo(commands::repo::RepoCommand),
    /// Create, list, check, restore and expire snapshots.
    #[command(subcommand)]
    Snapshot(Box<commands::snapshot::SnapshotCommand>),
    /// The in-container form: save and restore $STATE_DIRECTORY (for preStop hooks).
    #[command(subcommand)]
    State(commands::state::StateCommand),
    /// Check a zenith.toml and import docker-compose files.
    #[command(subcommand)]
    Spec(commands::spec::SpecCommand),
    /// Run the daemon: supervisor, router and API (foreground; stop with SIGTERM or Ctrl-C).
    Serve(commands::serve::ServeArgs),
    /// Deploy an app spec as a new revision, printing the plan and following the rollout.
    Deploy(commands::deploy::DeployArgs),
    /// Roll an app back to an earlier revision: code and config, and with --with-state its
    /// state data as it was when that revision was deployed.
    Rollback(commands::deploy::RollbackArgs),
    /// Restore an app's state from a snapshot set and start it again, or (--drill) prove the
    /// snapshots restore, on scratch copies.
    Recover(commands::recover::RecoverArgs),
    /// The daemon's scheduled snapshots, integrity checks, drills and prunes.
    #[command(subcommand)]
    Schedule(commands::recover::ScheduleCommand),
    /// List the apps the daemon runs.
    Apps,
    /// Look at one app.
    #[command(subcommand)]
    App(commands::apps::AppCommand),
    /// Revision history, rollout progress, and decisions on a canary or blue-green rollout.
    #[command(subcommand)]
    Rollout(commands::rollout::RolloutCommand),
    /// Replica output of an app (rotated logs kept by the daemon).
    Logs(commands::admin::LogsArgs),
    /// Create, list and revoke API tokens (admin only).
    #[command(subcommand)]
    Token(commands::admin::TokenCommand),
    /// Who changed what, when, and how it ended.
    Audit(commands::admin::AuditArgs),
    /// The whole story in a minute: a daemon, an app, a canary that completes, a bad version
    /// rolled back by itself (nothing to install; everything is removed afterwards).
    Demo(commands::demo::DemoArgs),
    /// The bundled demo web app (serves $PORT); used by `zenith demo` and the tests.
    #[command(hide = true)]
    DemoApp,
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { exit::OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let out = Out {
        format: cli.output_format,
        quiet: cli.quiet,
        progress: !cli.no_progress,
    };
    let repo = cli.repo.with_env();
    let result = match cli.command {
        Command::Repo(c) => commands::repo::run(c, &repo, out),
        Command::Snapshot(c) if matches!(*c, commands::snapshot::SnapshotCommand::Health) => {
            commands::recover::health(&cli.daemon, out)
        }
        Command::Snapshot(c) => commands::snapshot::run(*c, &repo, out),
        Command::State(c) => commands::state::run(c, &repo, out),
        Command::Spec(c) => commands::spec::run(c, out),
        Command::Serve(a) => commands::serve::run(a, &cli.daemon, &repo),
        Command::Deploy(a) => commands::deploy::deploy(a, &cli.daemon, out),
        Command::Rollback(a) => commands::deploy::rollback(a, &cli.daemon, out),
        Command::Recover(a) => commands::recover::recover(a, &cli.daemon, out),
        Command::Schedule(c) => commands::recover::schedule(c, &cli.daemon, out),
        Command::Apps => commands::apps::list(&cli.daemon, out),
        Command::App(c) => commands::apps::app(c, &cli.daemon, out),
        Command::Rollout(c) => commands::rollout::run(c, &cli.daemon, out),
        Command::Logs(a) => commands::admin::logs(a, &cli.daemon),
        Command::Token(c) => commands::admin::token(c, &cli.daemon, out),
        Command::Audit(a) => commands::admin::audit(a, &cli.daemon, out),
        Command::Demo(a) => commands::demo::run(a, &cli.daemon, out),
        Command::DemoApp => commands::demo_app::run(),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("error: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}
