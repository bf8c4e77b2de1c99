//! Keep-alive connections to one backend, driven by the request that uses them.
//!
//! A general client pool (hyper-util's) runs every backend connection in a task of its own
//! and hands each request to it through a channel, plus a spawned task per request that puts
//! the connection back; on a proxy that is three task wake-ups per request, often across
//! worker threads, and they cost more CPU than the HTTP work. Here a connection is owned by
//! whoever uses it: the client connection's task polls it while it sends the request and
//! streams the answer (see `RespBody`), and puts it back into its backend's idle list once
//! the answer's last byte was read. An idle connection is polled by nobody; a backend that
//! closed it is noticed when the next request polls it, before anything is written.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::body::ReqBody;

/// More idle connections than this per backend are closed instead of kept; far above what
/// one host's clients keep busy at once.
const MAX_IDLE: usize = 1024;

type Driver = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// One HTTP/1.1 connection to a backend: the request side and the future doing its I/O.
pub(crate) struct Conn {
    sender: SendRequest<ReqBody>,
    /// `None` once the connection closed (or was upgraded).
    driver: Option<Driver>,
    idle_since: Instant,
}

impl Conn {
    /// Makes progress on the connection's I/O; wake-ups go to `cx`'s task.
    pub(crate) fn drive(&mut self, cx: &mut Context<'_>) {
        if let Some(driver) = &mut self.driver
            && let Poll::Ready(result) = driver.as_mut().poll(cx)
        {
            if let Err(error) = result {
                tracing::debug!(%error, "backend connection ended");
            }
            self.driver = None;
        }
    }

    /// Runs the connection to its end: after a `101 Switching Protocols` this hands the
    /// socket over to the upgrade.
    pub(crate) async fn finish(mut self) {
        if let Some(driver) = self.driver.take() {
            let _ = driver.await;
        }
        drop(self.sender);
    }
}

/// Why a request could not be sent.
pub(crate) enum SendError {
    /// Nothing reached the backend (connect failed or timed out, or the new connection
    /// closed before the request was written): any request may go elsewhere.
    NotSent(io::Error),
    /// The request was (possibly partly) written and no response came.
    Failed(hyper::Error),
}

/// Idle connections of one backend, the most recently used last.
pub(crate) struct Pool {
    idle: Mutex<Vec<Conn>>,
    /// How long an idle connection is kept.
    max_idle: Duration,
}

impl Pool {
    pub(crate) fn new(max_idle: Duration) -> Self {
        Self {
            idle: Mutex::default(),
            max_idle,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Conn>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most recently used idle connection, unless it sat too long; then all others did
    /// too, and they are closed.
    fn take(&self) -> Option<Conn> {
        let mut idle = self.lock();
        let conn = idle.pop()?;
        if conn.idle_since.elapsed() < self.max_idle {
            return Some(conn);
        }
        let stale = std::mem::take(&mut *idle);
        drop(idle);
        drop((conn, stale));
        None
    }

    /// Keeps `conn` for the next request if it finished its exchange cleanly.
    pub(crate) fn put(&self, mut conn: Conn) {
        // Let the connection settle (a request whose answer came early may still be
        // writing its body); only a connection that can take a request now is kept.
        conn.drive(&mut Context::from_waker(Waker::noop()));
        if conn.driver.is_none() || !conn.sender.is_ready() {
            return;
        }
        let now = Instant::now();
        conn.idle_since = now;
        let mut idle = self.lock();
        let stale = self.split_expired(&mut idle, now);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        drop(idle);
        drop(stale);
    }

    /// Closes the connections that sat idle too long, also when no request comes by to
    /// notice (see `control::reap_idle`).
    pub(crate) fn evict_expired(&self) {
        let stale = self.split_expired(&mut self.lock(), Instant::now());
        drop(stale);
    }

    /// Takes out the expired connections, to be closed after the lock is released. They are
    /// the oldest, at the front.
    fn split_expired(&self, idle: &mut Vec<Conn>, now: Instant) -> Vec<Conn> {
        let expired = idle.partition_point(|c| now.duration_since(c.idle_since) >= self.max_idle);
        idle.drain(..expired).collect()
    }

    /// Closes every idle connection (the backend left the set).
    pub(crate) fn clear(&self) {
        let idle = std::mem::take(&mut *self.lock());
        drop(idle);
    }
}

/// How new backend connections are made.
pub(crate) struct Connector {
    http: http1::Builder,
    connect_timeout: Duration,
}

impl Connector {
    pub(crate) fn new(connect_timeout: Duration) -> Self {
        let mut http = http1::Builder::new();
        // See the server side in `Router::bind`: one buffer, one `write`.
        http.writev(false);
        Self { http, connect_timeout }
    }

    async fn connect(&self, addr: std::net::SocketAddr) -> Result<Conn, SendError> {
        let not_sent = SendError::NotSent;
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| not_sent(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")))?
            .map_err(not_sent)?;
        // Small requests must not wait for Nagle's algorithm.
        stream.set_nodelay(true).map_err(not_sent)?;
        let (sender, conn) = self
            .http
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| not_sent(io::Error::other(e)))?;
        Ok(Conn {
            sender,
            driver: Some(Box::pin(conn.with_upgrades())),
            idle_since: Instant::now(),
        })
    }

    /// Sends `req` on an idle connection of `pool` or a new one to `addr`, driving the
    /// connection until the response head arrives. A pooled connection that turns out to be
    /// closed before the request was written is dropped and the request tries the next one.
    pub(crate) async fn send(
        &self,
        pool: &Pool,
        addr: std::net::SocketAddr,
        mut req: Request<ReqBody>,
    ) -> Result<(Response<Incoming>, Conn), SendError> {
        loop {
            let (mut conn, reused) = match pool.take() {
                Some(conn) => (conn, true),
                None => (self.connect(addr).await?, false),
            };
            let ready = poll_fn(|cx| {
                conn.drive(cx);
                conn.sender.poll_ready(cx)
            })
            .await;
            if let Err(error) = ready {
                if reused {
                    continue;
                }
                return Err(SendError::NotSent(io::Error::other(error)));
            }
            let mut sent = std::pin::pin!(conn.sender.try_send_request(req));
            let result = poll_fn(|cx| {
                conn.drive(cx);
                sent.as_mut().poll(cx)
            })
            .await;
            match result {
                Ok(resp) => return Ok((resp, conn)),
                Err(mut error) => match error.take_message() {
                    Some(back) if reused => req = back,
                    Some(_) => return Err(SendError::NotSent(io::Error::other(error.into_error()))),
                    None => return Err(SendError::Failed(error.into_error())),
                },
            }
        }
    }
}
