//! The body types on both sides of the proxy. Bodies stream frame by frame, never buffered.
//!
//! [`ReqBody`] can hand an unread client body back: when a backend refuses the connection, the
//! client (pool) drops the request without ever polling its body, and the body returns to a
//! slot so the request can go to another backend. [`RespBody`] carries the in-flight guard
//! and records the request's metrics when it is dropped, so latency covers the whole response
//! and a drain waits until the last byte has been sent.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::balance::InFlight;
use crate::metrics::RevisionStats;

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
    pub(crate) stats: Arc<RevisionStats>,
    pub(crate) start: Instant,
    pub(crate) status: u16,
    pub(crate) guard: Option<InFlight>,
}

/// The response body sent to the client.
pub(crate) struct RespBody {
    inner: Inner,
    record: Option<Record>,
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
        }
    }

    pub(crate) fn stream(body: Incoming, record: Record) -> Self {
        Self {
            inner: Inner::Stream(body),
            record: Some(record),
        }
    }
}

impl Drop for RespBody {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            record.stats.record(record.status, record.start.elapsed());
            drop(record.guard);
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
                let polled = Pin::new(body).poll_frame(cx);
                if let Poll::Ready(Some(Err(err))) = &polled
                    && let Some(record) = &this.record
                {
                    // The backend went away mid-response; the client connection is aborted.
                    tracing::debug!(
                        backend = record.guard.as_ref().map(|g| g.backend().backend.id.as_str()),
                        error = %err,
                        "backend failed while streaming a response"
                    );
                    record.stats.proxy_error();
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
