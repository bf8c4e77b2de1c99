//! The client side: accepting connections and serving HTTP/1.1 on them with keep-alive and
//! upgrades, plus the bookkeeping a graceful shutdown needs (which connections and tunnels are
//! still open, and a phase signal they all watch).

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use http::HeaderValue;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Notify;

use crate::Shared;
use crate::config::RouterError;
use crate::proxy;
use crate::workers::Workers;

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

/// Wakes a connection's task when the router's phase changes, and notes that it did.
#[derive(Default)]
struct PhaseSignal {
    changed: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for PhaseSignal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.changed.store(true, Ordering::Release);
        if let Some(task) = &*self.task.lock().unwrap_or_else(|e| e.into_inner()) {
            task.wake_by_ref();
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
                // Counted from here, so a shutdown cannot miss a connection on its way to a
                // worker.
                let track = Shared::track(&shared);
                hand_over(Arc::clone(&shared), track, stream, peer);
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

/// Serves the connection on a worker thread (see [`Workers`]), or on this runtime when
/// there are none.
fn hand_over(shared: Arc<Shared>, track: Tracked, stream: TcpStream, peer: SocketAddr) {
    let Some(workers) = Workers::get() else {
        tokio::spawn(serve(shared, track, stream, peer));
        return;
    };
    // The socket moves to the worker's event loop: out of this runtime's, into the worker's
    // once the task runs there.
    let stream = match stream.into_std() {
        Ok(stream) => stream,
        Err(error) => {
            tracing::debug!(service = %shared.config.service, %peer, %error, "cannot hand the connection over");
            return;
        }
    };
    workers.spawn(async move {
        match TcpStream::from_std(stream) {
            Ok(stream) => serve(shared, track, stream, peer).await,
            Err(error) => {
                tracing::debug!(service = %shared.config.service, %peer, %error, "cannot hand the connection over");
            }
        }
    });
}

async fn serve(shared: Arc<Shared>, _track: Tracked, stream: TcpStream, peer: SocketAddr) {
    let mut phase = shared.phase.subscribe();
    // Requests clone this connection's own `Arc`, not the router's: a reference count that
    // every connection bumps on every request would bounce between cores.
    let client = Arc::new(proxy::Client {
        shared: Arc::clone(&shared),
        ip: HeaderValue::try_from(peer.ip().to_string()).expect("an IP is a header value"),
    });
    let service = service_fn(move |req| proxy::handle(Arc::clone(&client), req));
    let conn = shared
        .http
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let signal = Arc::new(PhaseSignal::default());
    let signal_waker = Waker::from(Arc::clone(&signal));
    let mut seen = Phase::Serving;
    let result = loop {
        signal.changed.store(true, Ordering::Release);
        let current = seen;
        let changed = phase.wait_for(move |p| *p != current);
        tokio::pin!(changed);
        let event = poll_fn(|cx| {
            if let Poll::Ready(result) = conn.as_mut().poll(cx) {
                return Poll::Ready(Err(result));
            }
            // Polling the watch takes a lock that every connection shares, so it is looked
            // at only when it may have changed, not on each of the connection's wake-ups.
            if signal.changed.swap(false, Ordering::AcqRel) {
                *signal.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
                if let Poll::Ready(changed) = changed.as_mut().poll(&mut Context::from_waker(&signal_waker)) {
                    return Poll::Ready(Ok(changed.map_or(Phase::Closed, |p| *p)));
                }
            }
            Poll::Pending
        })
        .await;
        match event {
            Err(result) => break result,
            Ok(phase) => seen = phase,
        }
        match seen {
            // Finish the request being served, then close instead of keeping alive.
            Phase::Draining => conn.as_mut().graceful_shutdown(),
            Phase::Closed => return,
            Phase::Serving => {}
        }
    };
    if let Err(error) = result {
        tracing::debug!(service = %shared.config.service, %peer, %error, "client connection ended");
    }
}
