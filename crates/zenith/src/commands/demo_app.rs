//! `zenith demo-app`: a small web app bundled in the binary, so a newcomer (and the test
//! suite) can run zenith's deploy path with nothing else installed. It serves on `$PORT`:
//! `/` answers with its version, `/health` with its health, `/slow?ms=N` after a delay.
//! `DEMO_VERSION`, `DEMO_UNHEALTHY=1`, `DEMO_UNHEALTHY_AFTER_MS` and `DEMO_CRASH_AFTER_MS`
//! shape its behaviour; `DEMO_ERROR_RATE` (percent of `/` answered 500, spread evenly) and
//! `DEMO_LATENCY_MS` (added to every `/`) make a bad version for canary demos and tests. On
//! SIGTERM it stops accepting and finishes what is in flight.
//!
//! With `STATE_DIRECTORY` set (zenith sets it to a service's first state directory) it keeps
//! state there: `POST /write/KEY` stores the body as the file KEY (written aside, synced,
//! renamed: a write that was answered 200 is on disk whole), `GET /read/KEY` returns it.
//! `DEMO_REQUIRE_STATE=KEY` makes `/health` fail while the file KEY is missing.

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
    // Loopback by default; in a container, where published ports arrive from outside, set
    // DEMO_BIND=0.0.0.0.
    let bind: std::net::IpAddr = crate::env::var("DEMO_BIND")
        .unwrap_or_else(|| "127.0.0.1".into())
        .parse()
        .context("$DEMO_BIND is not an IP address")?;
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
    let state_dir = crate::env::var("STATE_DIRECTORY").map(std::path::PathBuf::from);
    let require_state = crate::env::var("DEMO_REQUIRE_STATE");
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
        let (write_dir, read_dir, health_dir) = (state_dir.clone(), state_dir.clone(), state_dir.clone());
        let writer = version.clone();
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
                    let missing = require_state
                        .as_ref()
                        .is_some_and(|k| health_dir.as_ref().is_none_or(|d| !d.join(k).exists()));
                    if unhealthy || sick || missing {
                        (StatusCode::INTERNAL_SERVER_ERROR, "unhealthy\n")
                    } else {
                        (StatusCode::OK, "ok\n")
                    }
                }),
            )
            .route(
                "/write/{key}",
                axum::routing::post(
                    move |axum::extract::Path(key): axum::extract::Path<String>, body: axum::body::Bytes| async move {
                        let Some(dir) = write_dir else {
                            return (StatusCode::NOT_FOUND, "no STATE_DIRECTORY\n".to_string());
                        };
                        match write_state(&dir, &key, &body) {
                            Ok(()) => (StatusCode::OK, format!("stored {key} by {writer}\n")),
                            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
                        }
                    },
                ),
            )
            .route(
                "/read/{key}",
                get(
                    move |axum::extract::Path(key): axum::extract::Path<String>| async move {
                        let value =
                            read_dir.and_then(|d| safe_key(&key).then(|| std::fs::read(d.join(&key)).ok()).flatten());
                        match value {
                            Some(v) => (StatusCode::OK, v),
                            None => (StatusCode::NOT_FOUND, b"no such key\n".to_vec()),
                        }
                    },
                ),
            )
            .route(
                "/slow",
                get(|Query(q): Query<std::collections::HashMap<String, u64>>| async move {
                    let ms = q.get("ms").copied().unwrap_or(1000);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    format!("slept {ms} ms\n")
                }),
            );
        let listener = tokio::net::TcpListener::bind((bind, port))
            .await
            .with_context(|| format!("cannot listen on {bind}:{port}"))?;
        println!("demo-app {version} listening on {bind}:{port}");
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

/// Keys are file names, nothing more.
fn safe_key(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('.')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn write_state(dir: &std::path::Path, key: &str, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if !safe_key(key) {
        return Err(std::io::Error::other("keys are letters, digits, '-', '_' and '.'"));
    }
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{key}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(body)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(key))
}
