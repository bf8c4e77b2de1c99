//! `zenith demo`: the whole deploy story in about a minute, with nothing installed. It starts
//! a daemon in a temporary directory, deploys the bundled demo app (v1), sends it steady
//! traffic, rolls out a good v2 as a canary step by step, then a bad v3 that zenith must catch
//! from its router's metrics and roll back by itself; then it stops everything and removes
//! what it made. Every deploy goes through the real path (a spec file, the parser, the API),
//! so the demo is also an end-to-end check that the story still holds.

mod follow;
mod report;
mod sandbox;
mod spec;
mod traffic;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use serde_json::json;
use zenith_server::api::apps::DeployResponse;
use zenith_server::store::RevisionStatus;

use self::follow::{Log, Outcome, Watch};
use self::report::Report;
use self::sandbox::{Daemon, Interrupt, Sandbox};
use self::spec::{APP, Bad, Settings, Version};
use super::CmdResult;
use crate::client::{Client, DaemonArgs};
use crate::exit::{self, Failure};
use crate::output::Out;

/// Traffic on v1 alone before v2 is deployed, so the live view starts from a steady state.
const WARM_UP: Duration = Duration::from_secs(3);
/// Traffic after v3's rollback, to show every request back on v2.
const AFTER: Duration = Duration::from_secs(3);
/// The longest one deploy may take before the demo gives up on it.
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Public port of the demo app, where zenith's router listens [default: a free port].
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
    /// How v3 is bad: 30 % of its answers are HTTP 500, or each takes 400 ms more.
    #[arg(long, value_enum, default_value_t = Bad::Errors)]
    bad: Bad,
    /// Keep the temporary directory (the specs, the daemon's data and log) and say where.
    #[arg(long)]
    keep: bool,
    /// Requests per second the demo's clients send.
    #[arg(long, default_value_t = 150, value_name = "N", value_parser = clap::value_parser!(u32).range(20..=2000))]
    rate: u32,
    /// Time between two checks of a canary step.
    #[arg(long, default_value = "2s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    interval: Duration,
}

pub fn run(args: DemoArgs, daemon: &DaemonArgs, out: Out) -> CmdResult {
    let log = Log::new(out.quiet);
    if daemon.data_dir.is_some() || daemon.daemon.is_some() {
        log.say("note: the demo runs its own daemon in a fresh directory; --data-dir and --daemon are not used");
    }
    if args.interval < Duration::from_millis(500) {
        return Err(Failure {
            code: exit::USAGE,
            error: anyhow!("--interval must be at least 500ms: a check needs time to gather requests"),
        });
    }
    let interrupt = Interrupt::install()?;
    let sandbox = Sandbox::create()?;
    let mut report = Report {
        bad: format!("{:?}", args.bad).to_lowercase(),
        dir: sandbox.dir.clone(),
        daemon_log: sandbox.log(),
        ..Report::default()
    };
    log.say(
        "zenith demo: a canary rollout judged live from zenith's router, in about a minute (Ctrl-C stops it cleanly)",
    );
    let result = with_daemon(&args, &sandbox, &interrupt, &log, &mut report);
    report.left_running = sandbox::still_running(report.replica_pids.iter().copied());
    finish(result, &args, &sandbox, &log, report, out)
}

/// Starts the daemon, tells the story, and stops the daemon whatever happened.
fn with_daemon(
    args: &DemoArgs,
    sandbox: &Sandbox,
    interrupt: &Interrupt,
    log: &Log,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut daemon = Daemon::start(sandbox, interrupt)?;
    report.daemon_pid = Some(daemon.pid);
    log.say(format!(
        "daemon: `zenith serve` runs as pid {}, API {}, data in {}",
        daemon.pid,
        daemon.address,
        sandbox.data().display()
    ));
    // The demo's own daemon knows only its admin token, whatever ZENITH_TOKEN says.
    let token = std::fs::read_to_string(sandbox.data().join("admin.token"))
        .map(|t| t.trim().to_string())
        .with_context(|| format!("reading the demo daemon's admin token in {}", sandbox.data().display()))?;
    let client = Client::at(&daemon.address, Some(token));
    let mut watch = Watch::new(&client, log, interrupt);
    let told = tell(args, sandbox, &mut watch, report);
    if let Some(t) = watch.traffic.take() {
        let all = t.stop();
        (report.requests, report.failed) = (all.sent, all.failed);
    }
    report.replica_pids = std::mem::take(&mut watch.pids);
    log.say("stopping: the daemon stops its replicas, then exits");
    let stopped = daemon.stop()?;
    told?;
    if !stopped {
        bail!("the daemon did not stop within a minute and was killed; its replicas may still run");
    }
    Ok(())
}

/// The four steps; `report` is filled in as they go.
fn tell(args: &DemoArgs, sandbox: &Sandbox, watch: &mut Watch<'_>, report: &mut Report) -> anyhow::Result<()> {
    let log = watch.log;
    let exe = std::env::current_exe().context("cannot find the zenith binary for the demo app")?;
    let port = match args.port {
        Some(p) => p,
        None => free_port()?,
    };
    report.url = format!("http://127.0.0.1:{port}/");
    let url = report.url.clone();
    let settings = Settings {
        exe: &exe,
        port,
        interval: args.interval,
    };

    log.say(format!(
        "1/4  deploy v1: 2 replicas of the bundled demo app behind zenith's router at {url}"
    ));
    let (rev, o) = deploy(watch, &sandbox.dir, &settings, &Version { name: "v1", env: &[] })?;
    report.v1.outcome(rev, &o);
    report.v1.secs = o.secs;
    if o.status != RevisionStatus::Complete {
        bail!("v1 did not start: r{rev} {}: {}", o.status.as_str(), o.message(rev));
    }
    log.say(format!("     r{rev} complete in {:.1}s: v1 answers at {url}", o.secs));

    log.say(format!(
        "2/4  traffic: clients send {} requests/s to {url} and count the answers by version",
        args.rate
    ));
    watch.traffic = Some(traffic::Traffic::start(&url, args.rate));
    let mark = watch.mark();
    watch.soak(WARM_UP)?;
    let (c, secs) = watch.since(&mark);
    report.before.traffic(&c, secs);

    log.say(format!(
        "3/4  deploy v2 as a canary: 10% → 25% → 50% → 75% → 100% of the traffic, each step checked every {}: \
         ≤5% errors, p95 ≤250ms, score ≥50",
        humantime::format_duration(args.interval)
    ));
    let mark = watch.mark();
    let (rev, o) = deploy(watch, &sandbox.dir, &settings, &Version { name: "v2", env: &[] })?;
    let (c, secs) = watch.since(&mark);
    report.v2.traffic(&c, secs);
    report.v2.outcome(rev, &o);
    if o.status != RevisionStatus::Complete {
        bail!(
            "v2 should have completed, but r{rev} {}: {}",
            o.status.as_str(),
            o.message(rev)
        );
    }
    log.say(format!(
        "     r{rev} complete in {:.1}s: v2 has all the traffic; clients saw {} of {} requests fail",
        o.secs, c.failed, c.sent
    ));

    log.say(format!("4/4  deploy v3, a bad version: {}", args.bad.words()));
    let mark = watch.mark();
    let (rev, o) = deploy(
        watch,
        &sandbox.dir,
        &settings,
        &Version {
            name: "v3",
            env: args.bad.env(),
        },
    )?;
    let (c, secs) = watch.since(&mark);
    report.v3.traffic(&c, secs);
    report.v3.outcome(rev, &o);
    follow::explain_abort(log, rev, &o, &report.v3)?;

    log.say(format!(
        "     after the rollback: the clients go on, and v2 answers them all at {url}"
    ));
    let mark = watch.mark();
    watch.soak(AFTER)?;
    let (c, secs) = watch.since(&mark);
    report.after.traffic(&c, secs);
    Ok(())
}

/// Writes the spec of `version`, deploys it through the API and follows it to the end.
fn deploy(
    watch: &mut Watch<'_>,
    dir: &Path,
    settings: &Settings<'_>,
    version: &Version<'_>,
) -> anyhow::Result<(u64, Outcome)> {
    let (path, spec) = spec::write_and_load(dir, settings, version)?;
    let body = json!({ "spec": spec, "source": path.display().to_string(), "dry_run": false, "force": false });
    let resp: DeployResponse = watch
        .client
        .post(&format!("/v1/apps/{APP}/deploy"), &body)
        .map_err(|f| f.error)?;
    watch.log.say(format!(
        "     r{}: {} deployed from {}",
        resp.revision,
        version.name,
        path.display()
    ));
    let outcome = watch.follow(resp.revision, DEPLOY_TIMEOUT)?;
    Ok((resp.revision, outcome))
}

fn finish(
    result: anyhow::Result<()>,
    args: &DemoArgs,
    sandbox: &Sandbox,
    log: &Log,
    mut report: Report,
    out: Out,
) -> CmdResult {
    report.conclude(&result, log.elapsed().as_secs_f64());
    // A failed run keeps its directory: the daemon's log is where the answer is.
    report.kept = args.keep || (!report.ok && !report.interrupted);
    if !report.kept
        && let Err(e) = sandbox.remove()
    {
        log.say(format!("warning: {e:#}"));
    }
    if !out.quiet {
        eprintln!("{}", report.text());
    }
    if report.ok {
        log.say(
            "as expected: v2 went out step by step with no failed request; v3 was caught and rolled back by zenith",
        );
    }
    if report.kept {
        log.say(format!(
            "kept {}: the specs (v1.toml, v2.toml, v3.toml), the daemon's data (data/) and log (daemon.log)",
            sandbox.dir.display()
        ));
    }
    if out.json() {
        println!(
            "{}",
            serde_json::to_string(&report).context("cannot write the summary")?
        );
    }
    match report.error {
        None => Ok(exit::OK),
        Some(e) if report.interrupted => Err(Failure {
            code: exit::PROBLEM,
            error: anyhow!(
                "{e}: the daemon and its replicas are stopped{}",
                if report.kept {
                    ""
                } else {
                    ", the demo's directory is removed"
                }
            ),
        }),
        Some(e) => Err(Failure {
            code: exit::PROBLEM,
            error: anyhow!("{e}\nthe daemon's log: {}", report.daemon_log.display()),
        }),
    }
}

/// A port nobody listens on now (the kernel's choice), for the demo app's router.
fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port; pass --port")?;
    Ok(l.local_addr().context("cannot find a free port; pass --port")?.port())
}
