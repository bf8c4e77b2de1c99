//! Probes against real sockets on 127.0.0.1 and real commands.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use zenith_runtime::{ProcessRuntime, probe};
use zenith_spec::{HealthCheck, Probe};

use crate::common::{Fixture, sh};

fn check(probe: Probe) -> HealthCheck {
    HealthCheck {
        probe,
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(10),
        retries: 3,
        start_period: Duration::ZERO,
    }
}

/// Serves one request with `status` (or never answers when `None`); returns the port and the
/// request head as received.
async fn one_shot_server(status: Option<u16>) -> (u16, oneshot::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0_u8; 512];
        while !head.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "request cut short");
            head.extend_from_slice(&buf[..n]);
        }
        let _ = tx.send(String::from_utf8(head).unwrap());
        match status {
            Some(status) => {
                let answer = format!("HTTP/1.1 {status} Whatever\r\nContent-Length: 0\r\n\r\n");
                stream.write_all(answer.as_bytes()).await.unwrap();
            }
            None => std::future::pending::<()>().await,
        }
    });
    (port, rx)
}

#[tokio::test]
async fn http_probe_judges_the_status() {
    let fx = Fixture::new();
    let spec = fx.spec("web", "true");
    let rt = ProcessRuntime::new();
    let http = check(Probe::Http { path: "/health".into() });

    for (status, expected) in [
        (200, Ok(())),
        (302, Ok(())),
        (500, Err("GET /health → 500".to_string())),
    ] {
        let (port, request) = one_shot_server(Some(status)).await;
        assert_eq!(probe(&http, port, &rt, &spec).await, expected, "status {status}");
        let request = request.await.unwrap();
        assert!(request.starts_with("GET /health HTTP/1.1\r\n"), "{request}");
        assert!(request.contains("\r\nHost: 127.0.0.1\r\n"), "{request}");
        assert!(request.contains("\r\nUser-Agent: zenith-health\r\n"), "{request}");
    }

    let (port, _request) = one_shot_server(None).await;
    let mut silent = http.clone();
    silent.timeout = Duration::from_millis(200);
    let err = probe(&silent, port, &rt, &spec).await.unwrap_err();
    assert!(err.starts_with("GET /health: no answer within"), "{err}");
}

#[tokio::test]
async fn refused_connections_are_named() {
    let fx = Fixture::new();
    let spec = fx.spec("web", "true");
    let rt = ProcessRuntime::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();

    assert_eq!(probe(&check(Probe::Tcp), port, &rt, &spec).await, Ok(()));
    drop(listener);
    let err = probe(&check(Probe::Tcp), port, &rt, &spec).await.unwrap_err();
    assert_eq!(err, format!("TCP 127.0.0.1:{port}: connection refused"));
    let http = check(Probe::Http { path: "/ready".into() });
    assert_eq!(
        probe(&http, port, &rt, &spec).await,
        Err("GET /ready: connection refused".into())
    );
}

#[tokio::test]
async fn exec_probe_uses_the_exit_status() {
    let fx = Fixture::new();
    let spec = fx.spec("worker", "true");
    let rt = ProcessRuntime::new();
    let ok = check(Probe::Exec { command: sh("exit 0") });
    assert_eq!(probe(&ok, 0, &rt, &spec).await, Ok(()));
    let bad = check(Probe::Exec {
        command: sh("echo queue stuck; exit 1"),
    });
    let err = probe(&bad, 0, &rt, &spec).await.unwrap_err();
    assert!(err.ends_with("ended with exit code 1: queue stuck"), "{err}");
}
