//! Runs a zenith [`Router`] in front of the given backends, for the HAProxy comparison in
//! `bench/router_vs_haproxy.sh`. Stops gracefully on SIGINT or SIGTERM and prints the
//! router's own metrics to stderr, so a run can be checked for proxy errors and for the split
//! between revisions.
//!
//! Usage: `bench_router [--threads N] [--weights REV=W,...] [--pins STABLE,CANARY] [--sticky]
//! LISTEN BACKEND...`, where a backend is `ADDR` (revision 1) or `ADDR@REV`. `--threads` sizes
//! the tokio runtime the router is started from (default 2 workers, as the daemon's on two
//! cores); that runtime accepts connections, and the router serves them on its own worker
//! threads. `--weights`, `--pins` and `--sticky` set what a rollout engine would: the service
//! label is `bench`, so the sticky cookie is `zenith-bench`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use zenith_router::{Backend, Pins, Router, RouterConfig};

const USAGE: &str =
    "usage: bench_router [--threads N] [--weights REV=W,...] [--pins STABLE,CANARY] [--sticky] LISTEN BACKEND...";

#[derive(Default)]
struct Args {
    threads: usize,
    weights: Option<BTreeMap<u64, u32>>,
    pins: Option<Pins>,
    listen: Option<SocketAddr>,
    /// Address and revision.
    backends: Vec<(SocketAddr, u64)>,
}

fn number<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("{what}: {text:?} is not a number"))
}

fn parse() -> Result<Args, String> {
    let mut parsed = Args {
        threads: 2,
        ..Args::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value; {USAGE}"));
        match arg.as_str() {
            "--threads" => parsed.threads = number(&value("--threads")?, "--threads")?,
            "--weights" => {
                let mut weights = BTreeMap::new();
                for pair in value("--weights")?.split(',') {
                    let (rev, weight) = pair
                        .split_once('=')
                        .ok_or(format!("--weights: {pair:?} is not REV=W"))?;
                    weights.insert(number(rev, "--weights")?, number(weight, "--weights")?);
                }
                parsed.weights = Some(weights);
            }
            "--pins" => {
                let pins = value("--pins")?;
                let (stable, canary) = pins.split_once(',').ok_or("--pins takes STABLE,CANARY")?;
                let pins = parsed.pins.get_or_insert_with(Pins::default);
                pins.stable = Some(number(stable, "--pins")?);
                pins.canary = Some(number(canary, "--pins")?);
            }
            "--sticky" => parsed.pins.get_or_insert_with(Pins::default).sticky = true,
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}; {USAGE}")),
            addr if parsed.listen.is_none() => parsed.listen = Some(addr.parse().map_err(|e| format!("{addr}: {e}"))?),
            backend => {
                let (addr, rev) = backend.split_once('@').unwrap_or((backend, "1"));
                let addr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
                parsed.backends.push((addr, number(rev, backend)?));
            }
        }
    }
    if parsed.listen.is_none() {
        return Err(USAGE.into());
    }
    Ok(parsed)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let config = RouterConfig {
            service: "bench".into(),
            ..Default::default()
        };
        let router = Router::bind(args.listen.expect("checked by parse"), config)?;
        let set = args.backends.iter().enumerate();
        router.set_backends(
            set.map(|(i, (addr, revision))| Backend {
                id: format!("b{i}"),
                addr: *addr,
                revision: *revision,
            })
            .collect(),
        );
        router.set_weights(args.weights);
        router.set_pins(args.pins);
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
