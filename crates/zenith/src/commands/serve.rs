//! `zenith serve`: runs the daemon in the foreground (logs on stderr, `RUST_LOG` to tune).

use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use clap::Args;

use super::CmdResult;
use crate::client::DaemonArgs;
use crate::exit;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address of the HTTP API. Loopback by default: the API is for this host's CLI.
    #[arg(long, default_value = "127.0.0.1:7780", value_name = "ADDR")]
    listen: SocketAddr,
    /// Address the apps' public ports (their routers) listen on.
    #[arg(long, default_value = "0.0.0.0", value_name = "IP")]
    router_host: IpAddr,
}

pub fn run(args: ServeArgs, daemon: &DaemonArgs) -> CmdResult {
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
