//! `zenith demo-app`: a small web app bundled in the binary, so a newcomer (and the test
//! suite) can run zenith's deploy path with nothing else installed. It serves on `$PORT`:
//! `/` answers with its version, `/health` with its health, `/slow?ms=N` after a delay.
//! `DEMO_VERSION`, `DEMO_UNHEALTHY=1`, `DEMO_UNHEALTHY_AFTER_MS` and `DEMO_CRASH_AFTER_MS`
//! shape its behaviour; `DEMO_ERROR_RATE` (percent of `/` answered 500, spread evenly) and
//! `DEMO_LATENCY_MS` (added to every `/`) make a bad version for canary demos and tests. On
//! SIGTERM it stops accepting and finishes what is in flight.

use std::time::Duration;

use anyhow::{Context, anyhow};
use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::get;

use super::CmdResult;
use crate::exit;

pub fn run() -> CmdResult {
    let port: u16 = crate::env::var("PORT")
        .ok_or_else(|| anyhow!("demo-app needs $PORT (zenith sets it for each replica)"))?
        .parse()
        .context("$PORT is not a port number")?;
    let version = crate::env::var("DEMO_VERSION").unwrap_or_else(|| "v1".into());
    let unhealthy = crate::env::flag("DEMO_UNHEALTHY", false);
    let sick_after = crate::env::var("DEMO_UNHEALTHY_AFTER_MS").and_then(|v| v.parse::<u64>().ok());
    let born = std::time::Instant::now();
    let crash_after = crate::env::var("DEMO_CRASH_AFTER_MS").and_then(|v| v.parse::<u64>().ok());
    let error_rate = crate::env::var("DEMO_ERROR_RATE")
        .map(|v| v.parse::<u64>().ok().filter(|r| *r <= 100))
        .map(|r| r.ok_or_else(|| anyhow!("DEMO_ERROR_RATE must be a percent, 0 to 100")))
        .transpose()?
        .unwrap_or(0);
    let latency = crate::env::var("DEMO_LATENCY_MS")
        .map(|v| {
            v.parse::<u64>()
                .context("DEMO_LATENCY_MS must be a number of milliseconds")
        })
        .transpose()?
        .map(Duration::from_millis);
    let served = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        if let Some(ms) = crash_after {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                eprintln!("demo-app: crashing on purpose after {ms} ms");
                std::process::exit(3);
            });
        }
        let hello = format!("hello from {version}\n");
        let failure = format!("{version} failed on purpose\n");
        let app = Router::new()
            .route(
                "/",
                get(move || async move {
                    if let Some(d) = latency {
                        tokio::time::sleep(d).await;
                    }
                    // Request k fails when k·rate crosses a multiple of 100: exactly `rate` in
                    // every 100 requests, spread out rather than in bursts.
                    let k = served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if (k + 1) * error_rate / 100 > k * error_rate / 100 {
                        (StatusCode::INTERNAL_SERVER_ERROR, failure)
                    } else {
                        (StatusCode::OK, hello)
                    }
                }),
            )
            .route(
                "/health",
                get(move || async move {
                    let sick = sick_after.is_some_and(|ms| born.elapsed() > Duration::from_millis(ms));
                    if unhealthy || sick {
                        (StatusCode::INTERNAL_SERVER_ERROR, "unhealthy\n")
                    } else {
                        (StatusCode::OK, "ok\n")
                    }
                }),
            )
            .route(
                "/slow",
                get(|Query(q): Query<std::collections::HashMap<String, u64>>| async move {
                    let ms = q.get("ms").copied().unwrap_or(1000);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    format!("slept {ms} ms\n")
                }),
            );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
        println!("demo-app {version} listening on 127.0.0.1:{port}");
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
                term.recv().await;
                println!("demo-app: SIGTERM, finishing in-flight requests");
            })
            .await
            .context("serving")?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(exit::OK)
}
