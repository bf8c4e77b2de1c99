//! Health checks: running one probe ([`probe`]) and judging a replica from the results
//! ([`HealthTracker`]). The HTTP probe speaks just enough HTTP/1.1 to read a status line: a
//! probe needs no client library, and its error says exactly what it saw.

mod tracker;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zenith_spec::{HealthCheck, Probe};

pub use tracker::{HealthState, HealthTracker};

use crate::{ReplicaSpec, Runtime, RuntimeError};

/// A status line longer than this is not HTTP.
const MAX_STATUS_LINE: usize = 8 * 1024;

/// Runs `check`'s probe once against a replica listening on `127.0.0.1:port`. `Err` carries
/// what was seen, ready for a status display: `GET /health → 500`, `connection refused`, …
pub async fn probe(check: &HealthCheck, port: u16, runtime: &dyn Runtime, spec: &ReplicaSpec) -> Result<(), String> {
    match &check.probe {
        Probe::Http { path } => http_probe(port, path, check.timeout).await,
        Probe::Tcp => {
            let connect = TcpStream::connect(("127.0.0.1", port));
            match tokio::time::timeout(check.timeout, connect).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("TCP 127.0.0.1:{port}: {}", describe(&e))),
                Err(_) => Err(format!(
                    "TCP 127.0.0.1:{port}: no connection within {:?}",
                    check.timeout
                )),
            }
        }
        Probe::Exec { command } => match runtime.exec(spec, command, check.timeout).await {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => {
                let last = out.output.lines().rev().find(|l| !l.trim().is_empty());
                Err(match last {
                    Some(line) => format!("`{}` ended with {}: {line}", command.join(" "), out.status),
                    None => format!("`{}` ended with {}", command.join(" "), out.status),
                })
            }
            Err(RuntimeError::ExecTimeout { timeout, .. }) => {
                Err(format!("`{}` did not finish within {timeout:?}", command.join(" ")))
            }
            Err(e) => Err(e.to_string()),
        },
        Probe::Image => runtime.reported_health(spec).await,
    }
}

async fn http_probe(port: u16, path: &str, timeout: Duration) -> Result<(), String> {
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    match tokio::time::timeout(timeout, get_status(port, &path)).await {
        Ok(Ok(status)) if (200..400).contains(&status) => Ok(()),
        Ok(Ok(status)) => Err(format!("GET {path} → {status}")),
        Ok(Err(seen)) => Err(format!("GET {path}: {seen}")),
        Err(_) => Err(format!("GET {path}: no answer within {timeout:?}")),
    }
}

/// Sends one GET and returns the status code of the answer.
async fn get_status(port: u16, path: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| describe(&e))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         User-Agent: zenith-health\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("sending the request: {}", describe(&e)))?;
    let mut head = Vec::new();
    let mut buf = [0_u8; 1024];
    let line_end = loop {
        if let Some(i) = head.windows(2).position(|w| w == b"\r\n") {
            break i;
        }
        if head.len() > MAX_STATUS_LINE {
            return Err("no status line in the first 8 KiB".to_string());
        }
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("reading the answer: {}", describe(&e)))?;
        if n == 0 {
            return Err(if head.is_empty() {
                "connection closed without an answer".to_string()
            } else {
                "connection closed in the status line".to_string()
            });
        }
        head.extend_from_slice(&buf[..n]);
    };
    parse_status_line(&String::from_utf8_lossy(&head[..line_end]))
}

/// `HTTP/1.1 200 OK` → 200.
fn parse_status_line(line: &str) -> Result<u16, String> {
    let mut parts = line.splitn(3, ' ');
    match (parts.next(), parts.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/") && code.len() == 3 => {
            code.parse().map_err(|_| format!("malformed status line `{line}`"))
        }
        _ => Err(format!("malformed status line `{line}`")),
    }
}

/// `connection refused` rather than `Connection refused (os error 111)`.
fn describe(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        std::io::ErrorKind::ConnectionReset => "connection reset".to_string(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line("HTTP/1.1 204 No Content"), Ok(204));
        assert_eq!(parse_status_line("HTTP/1.0 500"), Ok(500));
        assert!(parse_status_line("SSH-2.0-OpenSSH").is_err());
        assert!(parse_status_line("HTTP/1.1 2000 Huh").is_err());
    }
}
