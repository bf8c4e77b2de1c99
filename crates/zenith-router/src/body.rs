//! The body types on both sides of the proxy. Bodies stream frame by frame, never buffered.
//!
//! [`ReqBody`] can hand an unread client body back: when a backend refuses the connection, the
//! client (pool) drops the request without ever polling its body, and the body returns to a
//! slot so the request can go to another backend. [`RespBody`] carries the in-flight guard
//! and records the request's metrics when it is dropped, so latency covers the whole response
//! and a drain waits until the last byte has been sent. It also owns the backend connection
//! while the answer streams: polling the body drives that connection, and the connection
//! goes back to its backend's pool as soon as the last frame was read.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::balance::InFlight;
use crate::metrics::RevisionStats;
use crate::pool::Conn;

/// Where an unpolled client body waits after the backend connection failed.
pub(crate) type BodySlot = Arc<Mutex<Option<Incoming>>>;

/// The request body sent to a backend.
pub(crate) enum ReqBody {
    Empty,
    Stream {
        inner: Option<Incoming>,
        polled: bool,
        slot: BodySlot,
    },
}

impl ReqBody {
    pub(crate) fn stream(inner: Incoming, slot: &BodySlot) -> Self {
        Self::Stream {
            inner: Some(inner),
            polled: false,
            slot: Arc::clone(slot),
        }
    }
}

impl Drop for ReqBody {
    fn drop(&mut self) {
        if let Self::Stream {
            inner,
            polled: false,
            slot,
        } = self
            && let Some(body) = inner.take()
        {
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(body);
        }
    }
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            Self::Empty => Poll::Ready(None),
            Self::Stream { inner, polled, .. } => {
                *polled = true;
                match inner {
                    Some(body) => Pin::new(body).poll_frame(cx),
                    None => Poll::Ready(None),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Empty => true,
            Self::Stream { inner, .. } => inner.as_ref().is_none_or(Body::is_end_stream),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Stream { inner: Some(body), .. } => body.size_hint(),
            _ => SizeHint::with_exact(0),
        }
    }
}

/// Metrics to record once the response is done.
pub(crate) struct Record {
    pub(crate) counted: Counted,
    pub(crate) start: Instant,
    pub(crate) status: u16,
}

/// Where a response is counted.
pub(crate) enum Counted {
    /// A backend answered: its revision's counters, reached through the in-flight guard.
    Backend(InFlight),
    /// The router answered itself (502, 503).
    Router(Arc<RevisionStats>),
}

impl Record {
    fn stats(&self) -> &RevisionStats {
        match &self.counted {
            Counted::Backend(guard) => &guard.backend().stats,
            Counted::Router(stats) => stats,
        }
    }

    fn guard(&self) -> Option<&InFlight> {
        match &self.counted {
            Counted::Backend(guard) => Some(guard),
            Counted::Router(_) => None,
        }
    }
}

/// The response body sent to the client.
pub(crate) struct RespBody {
    inner: Inner,
    record: Option<Record>,
    /// The backend connection the body comes from, until the body is complete.
    conn: Option<Conn>,
}

enum Inner {
    Full(Option<Bytes>),
    Stream(Incoming),
}

impl RespBody {
    pub(crate) fn full(bytes: impl Into<Bytes>, record: Option<Record>) -> Self {
        Self {
            inner: Inner::Full(Some(bytes.into())),
            record,
            conn: None,
        }
    }

    /// Streams `body` from `conn`, which returns to the pool of `record`'s backend.
    pub(crate) fn stream(body: Incoming, record: Record, conn: Conn) -> Self {
        let mut this = Self {
            inner: Inner::Stream(body),
            record: Some(record),
            conn: Some(conn),
        };
        this.release_if_done();
        this
    }

    /// Once the backend's answer was read to its end, its connection can serve another
    /// request (hyper's server stops polling a body that says it has ended).
    fn release_if_done(&mut self) {
        if let Inner::Stream(body) = &self.inner
            && body.is_end_stream()
        {
            self.release();
        }
    }

    fn release(&mut self) {
        let guard = self.record.as_ref().and_then(Record::guard);
        if let (Some(conn), Some(guard)) = (self.conn.take(), guard) {
            let backend = guard.backend();
            if !backend.is_leaving() {
                backend.pool().put(conn);
            }
        }
    }
}

impl Drop for RespBody {
    fn drop(&mut self) {
        // An answer not read to its end leaves its connection unusable: it closes here.
        self.release_if_done();
        drop(self.conn.take());
        if let Some(record) = self.record.take() {
            // Counted before the guard goes, so a finished drain has all its requests counted.
            record.stats().record(record.status, record.start.elapsed());
            drop(record);
        }
    }
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        match &mut this.inner {
            Inner::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Inner::Stream(body) => {
                if let Some(conn) = &mut this.conn {
                    conn.drive(cx);
                }
                let polled = Pin::new(body).poll_frame(cx);
                match &polled {
                    Poll::Ready(Some(Err(err))) => {
                        if let Some(record) = &this.record {
                            // The backend went away mid-response; the client connection is
                            // aborted.
                            tracing::debug!(
                                backend = record.guard().map(|g| g.backend().backend.id.as_str()),
                                error = %err,
                                "backend failed while streaming a response"
                            );
                            record.stats().proxy_error();
                        }
                        this.conn = None;
                    }
                    Poll::Ready(None) => this.release(),
                    Poll::Ready(Some(Ok(_))) => this.release_if_done(),
                    Poll::Pending => {}
                }
                polled
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Full(bytes) => bytes.is_none(),
            Inner::Stream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Inner::Full(None) => SizeHint::with_exact(0),
            Inner::Stream(body) => body.size_hint(),
        }
    }
}
