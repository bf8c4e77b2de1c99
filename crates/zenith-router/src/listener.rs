//! The client side: accepting connections and serving HTTP/1.1 on them with keep-alive and
//! upgrades, plus the bookkeeping a graceful shutdown needs (which connections and tunnels are
//! still open, and a phase signal they all watch).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::HeaderValue;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Notify;

use crate::Shared;
use crate::config::RouterError;
use crate::proxy;

/// Where the router is in its life; every connection and tunnel watches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Serving,
    /// Stop accepting; finish what is in flight, close keep-alive connections when idle.
    Draining,
    /// The shutdown deadline passed: close everything still open.
    Closed,
}

/// Counts open client connections and tunnels, so shutdown knows when it is done.
#[derive(Default)]
pub(crate) struct Tracker {
    open: AtomicUsize,
    idle: Notify,
}

impl Tracker {
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    pub(crate) fn idle(&self) -> &Notify {
        &self.idle
    }
}

/// Keeps one connection or tunnel counted in the [`Tracker`] while alive.
pub(crate) struct Tracked(Arc<Shared>);

impl Shared {
    pub(crate) fn track(this: &Arc<Shared>) -> Tracked {
        this.tracker.open.fetch_add(1, Ordering::SeqCst);
        Tracked(Arc::clone(this))
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if self.0.tracker.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.tracker.idle.notify_waiters();
        }
    }
}

/// Binds with a deep backlog: the default of `std` (128) overflows under a burst of new
/// connections, which clients see as multi-second SYN retries.
pub(crate) fn bind(addr: SocketAddr, service: &str) -> Result<TcpListener, RouterError> {
    let err = |source| RouterError::Bind {
        service: service.to_owned(),
        addr,
        source,
    };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(err)?;
    socket.set_reuseaddr(true).map_err(err)?;
    socket.bind(addr).map_err(err)?;
    socket.listen(1024).map_err(err)
}

/// Accepts until the router leaves [`Phase::Serving`], then drops the listener so the port
/// refuses new connections at once.
pub(crate) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut phase = shared.phase.subscribe();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = phase.wait_for(|p| *p != Phase::Serving) => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                // Small responses must not wait for Nagle's algorithm.
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(Arc::clone(&shared), stream, peer));
            }
            Err(error) => {
                // Usually out of file descriptors; back off instead of spinning.
                tracing::warn!(service = %shared.config.service, %error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    tracing::debug!(service = %shared.config.service, "listener closed");
}

async fn serve(shared: Arc<Shared>, stream: tokio::net::TcpStream, peer: SocketAddr) {
    let _track = Shared::track(&shared);
    let mut phase = shared.phase.subscribe();
    // Rendered once per connection rather than once per request.
    let client_ip = HeaderValue::try_from(peer.ip().to_string()).expect("an IP is a header value");
    let svc_shared = Arc::clone(&shared);
    let service = service_fn(move |req| proxy::handle(Arc::clone(&svc_shared), client_ip.clone(), req));
    let conn = shared
        .http
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let mut seen = Phase::Serving;
    let result = loop {
        tokio::select! {
            result = conn.as_mut() => break result,
            changed = phase.wait_for(|p| *p != seen) => {
                seen = changed.map_or(Phase::Closed, |p| *p);
                match seen {
                    // Finish the request being served, then close instead of keeping alive.
                    Phase::Draining => conn.as_mut().graceful_shutdown(),
                    Phase::Closed => return,
                    Phase::Serving => {}
                }
            }
        }
    };
    if let Err(error) = result {
        tracing::debug!(service = %shared.config.service, %peer, %error, "client connection ended");
    }
}
