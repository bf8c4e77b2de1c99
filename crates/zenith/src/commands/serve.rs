//! `zenith serve`: runs the daemon in the foreground (logs on stderr, `RUST_LOG` to tune).

use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use clap::Args;

use super::CmdResult;
use crate::client::DaemonArgs;
use crate::env;
use crate::exit;
use crate::repo_open::{RepoArgs, kdf, password};
use std::path::Path;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address of the HTTP API. Loopback by default: the API is for this host's CLI.
    #[arg(long, default_value = "127.0.0.1:7780", value_name = "ADDR")]
    listen: SocketAddr,
    /// Address the apps' public ports (their routers) listen on.
    #[arg(long, default_value = "0.0.0.0", value_name = "IP")]
    router_host: IpAddr,
    /// When the daemon prunes its snapshot repository (cron, local time).
    #[arg(long, default_value = "30 3 * * *", value_name = "CRON")]
    prune_schedule: String,
}

/// The daemon's snapshot repository: `--repo`/`ZENITH_REPO` with its password, or by
/// default `<data-dir>/snapshots` with a generated password kept beside it (mode 0600).
fn snapshot_config(data_dir: &Path, repo: &RepoArgs) -> anyhow::Result<zenith_server::state::SnapshotConfig> {
    let given_password = repo.password_file.is_some() || env::var(env::ZENITH_PASSWORD).is_some();
    let (path, password) = match &repo.repo {
        Some(p) => {
            if !given_password {
                return Err(exit::usage(format!(
                    "the daemon needs the password of the repository {}: set {} or {}",
                    p.display(),
                    env::ZENITH_PASSWORD_FILE,
                    env::ZENITH_PASSWORD
                )));
            }
            (
                p.clone(),
                password(env::ZENITH_PASSWORD, repo.password_file.as_deref(), "", false)?,
            )
        }
        None if given_password => (
            data_dir.join("snapshots"),
            password(env::ZENITH_PASSWORD, repo.password_file.as_deref(), "", false)?,
        ),
        None => {
            let file = data_dir.join("snapshots.password");
            if !file.exists() {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&file)
                    .with_context(|| format!("cannot create {}", file.display()))?;
                writeln!(f, "{}", zenith_snapshot::Id::random().to_hex())?;
                f.sync_all()?;
            }
            (data_dir.join("snapshots"), password("", Some(&file), "", false)?)
        }
    };
    Ok(zenith_server::state::SnapshotConfig {
        repo: std::path::absolute(&path).unwrap_or(path),
        password,
        kdf: kdf(),
    })
}

pub fn run(args: ServeArgs, daemon: &DaemonArgs, repo: &RepoArgs) -> CmdResult {
    if let Err(e) = zenith_spec::cron::Cron::parse(&args.prune_schedule) {
        return Err(exit::usage(format!("--prune-schedule {:?}: {e}", args.prune_schedule)).into());
    }
    let snapshots = snapshot_config(&daemon.data_dir(), repo)?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let config = zenith_server::ServeConfig {
        data_dir: daemon.data_dir(),
        listen: args.listen,
        router_host: args.router_host,
        snapshots,
        prune_cron: args.prune_schedule,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match runtime.block_on(zenith_server::serve(config)) {
        Ok(()) => Ok(exit::OK),
        Err(e) => {
            let code = match e {
                zenith_server::ServeError::Locked { .. } | zenith_server::ServeError::Listen { .. } => exit::USAGE,
                _ => exit::PROBLEM,
            };
            Err(exit::Failure { code, error: e.into() })
        }
    }
}
