//! Runs a zenith [`Router`] in front of the given backends, for the HAProxy comparison in
//! `bench/router_vs_haproxy.sh`. Stops gracefully on SIGINT or SIGTERM and prints the
//! router's own metrics to stderr, so a run can be checked for proxy errors.
//!
//! Usage: `bench_router [--threads N] LISTEN BACKEND...`. `--threads` sizes the tokio runtime
//! the router is started from (default 2 workers, as the daemon's on two cores); that runtime
//! accepts connections, and the router serves them on its own worker threads.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use zenith_router::{Backend, Router, RouterConfig};

fn parse() -> Result<(usize, SocketAddr, Vec<SocketAddr>), String> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut threads = 2;
    if args.first().map(String::as_str) == Some("--threads") {
        threads = args
            .get(1)
            .and_then(|t| t.parse().ok())
            .ok_or("--threads needs a number")?;
        args.drain(..2);
    }
    let mut addrs = args.iter().map(|a| a.parse().map_err(|e| format!("{a}: {e}")));
    let listen = addrs
        .next()
        .ok_or("usage: bench_router [--threads N] LISTEN BACKEND...")??;
    let backends = addrs.collect::<Result<Vec<_>, _>>()?;
    Ok((threads, listen, backends))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (threads, listen, backends) = parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let config = RouterConfig {
            service: "bench".into(),
            ..Default::default()
        };
        let router = Router::bind(listen, config)?;
        let set = backends.iter().enumerate();
        router.set_backends(
            set.map(|(i, addr)| Backend {
                id: format!("b{i}"),
                addr: *addr,
                revision: 1,
            })
            .collect(),
        );
        eprintln!("bench_router listening on {}", router.local_addr());
        let (mut term, mut int) = (signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?);
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        router.shutdown(Duration::from_secs(2)).await;
        let metrics = router.metrics();
        let text = zenith_router::render_prometheus(&[("bench", &metrics)]);
        eprint!("{text}");
        Ok(())
    })
}
