//! Smoke tests: a GET sent straight to a new replica (not through the router) before it gets
//! any traffic, its answer held against what the spec expects. A full HTTP/1.1 client rather
//! than the health probe's status-line reader, because the body matters here.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use zenith_spec::SmokeProbe;

/// Bodies larger than this are cut: a smoke test looks for a marker, not a download.
const MAX_BODY: usize = 1 << 20;

/// Runs one smoke test against the replica listening on `port`.
pub async fn run(port: u16, probe: &SmokeProbe) -> Result<(), String> {
    let (status, body) = tokio::time::timeout(probe.timeout, get(port, &probe.path))
        .await
        .map_err(|_| format!("no answer within {}", humantime(probe.timeout)))??;
    match probe.status {
        Some(want) if status != want => return Err(format!("status {status}, expected {want}")),
        None if !(200..300).contains(&status) => return Err(format!("status {status}, expected 2xx")),
        _ => {}
    }
    if let Some(text) = &probe.body_contains
        && !body.contains(text.as_str())
    {
        return Err(format!("status {status}, but the body does not contain {text:?}"));
    }
    Ok(())
}

fn humantime(d: std::time::Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

async fn get(port: u16, path: &str) -> Result<(u16, String), String> {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let driver = tokio::spawn(conn);
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, format!("127.0.0.1:{port}"))
        .header(hyper::header::USER_AGENT, "zenith-smoke-test")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("invalid request: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = resp.status().as_u16();
    let body = Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading the body: {e}"))?
        .to_bytes();
    driver.abort();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
