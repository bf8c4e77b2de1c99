//! The request path: pick a backend, forward the request, stream the answer back, and retry
//! where that cannot do harm. Nothing was sent when a connection fails to open, so such a
//! request always moves to another backend; an idempotent request without a body also gets
//! one more try when the backend dies before answering, which covers the pooled connection
//! that a stopped replica closed a moment earlier.
//!
//! Upgraded connections (WebSocket and anything else behind `Connection: upgrade`) end up
//! here too: once both sides switched protocols the router only copies bytes. The tunnel
//! holds its backend's in-flight guard, so a drain waits for it like for a request, and it
//! closes when a drain times out or the router shuts down hard, instead of lingering on a
//! stopped replica.
//!
//! During a rollout a request may be pinned to a revision (see `sticky`); the route is
//! decided on the first attempt and kept by the retries, and a drawn request's answer gets
//! the `Set-Cookie` of the revision that served it.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, Version, header};
use hyper::body::{Body, Incoming};
use hyper_util::rt::TokioIo;

use crate::Shared;
use crate::balance::{BackendState, InFlight};
use crate::body::{BodySlot, Counted, Record, ReqBody, RespBody};
use crate::headers;
use crate::listener::Phase;
use crate::pool::{Conn, SendError};
use crate::sticky::Route;

/// One client connection's context, shared by its requests.
pub(crate) struct Client {
    pub(crate) shared: Arc<Shared>,
    /// The client's address as a header value, rendered once per connection.
    pub(crate) ip: HeaderValue,
}

/// Handles one client request; never fails, errors become 502/503 responses.
pub(crate) async fn handle(client: Arc<Client>, mut req: Request<Incoming>) -> Result<Response<RespBody>, Infallible> {
    let Client { shared, ip: client_ip } = &*client;
    let start = Instant::now();
    let upgrade = headers::wants_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    headers::forward_request(&mut parts.headers, client_ip, upgrade);
    // Backends get the origin form (`/path?query`), whatever form the client used.
    let path = Uri::from(
        parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/")),
    );
    let idempotent = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    let empty = body.is_end_stream();
    // Only a request with a body needs the slot that gives the body back after a failure.
    let slot: Option<BodySlot> = (!empty).then(BodySlot::default);
    let mut body = (!empty).then_some(body);

    let mut tried: Vec<Arc<BackendState>> = Vec::new();
    let mut resent = false;
    let mut route = None;
    while let Some((guard, set_cookie)) = acquire(shared, &tried, &parts.headers, &mut route) {
        let backend = guard.backend();
        let mut out = Request::new(match (body.take(), &slot) {
            (Some(b), Some(slot)) => ReqBody::stream(b, slot),
            _ => ReqBody::Empty,
        });
        *out.method_mut() = parts.method.clone();
        *out.uri_mut() = path.clone();
        *out.version_mut() = Version::HTTP_11;
        *out.headers_mut() = parts.headers.clone();
        if !out.headers().contains_key(header::HOST) {
            out.headers_mut().insert(header::HOST, backend.host.clone());
        }

        let sent = shared.connector.send(backend.pool(), backend.backend.addr, out).await;
        let (connect, error) = match sent {
            Ok((resp, conn)) => {
                let mut resp = respond(shared, resp, conn, guard, start, client_upgrade);
                if let Some(cookie) = set_cookie {
                    // Appended: the backend's own cookies stay.
                    resp.headers_mut().append(header::SET_COOKIE, cookie);
                }
                return Ok(resp);
            }
            Err(SendError::NotSent(error)) => (true, error.to_string()),
            Err(SendError::Failed(error)) => (false, error.to_string()),
        };
        backend.stats.proxy_error();
        tracing::debug!(
            service = %shared.config.service,
            backend = %backend.backend.id,
            connect,
            %error,
            "backend attempt failed"
        );
        tried.push(Arc::clone(backend));
        drop(guard);
        if let Some(slot) = &slot {
            body = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
            if body.is_none() {
                break; // part of the body went out: resending could duplicate the request
            }
        }
        if connect || (idempotent && empty && !std::mem::replace(&mut resent, true)) {
            continue;
        }
        break;
    }

    let service = &shared.config.service;
    let Some(last) = tried.last() else {
        let stats = Arc::clone(&shared.metrics.unrouted);
        stats.proxy_error();
        let text = format!("service {service} has no healthy replica\n");
        return Ok(plain(StatusCode::SERVICE_UNAVAILABLE, text, stats, start));
    };
    tracing::warn!(service = %service, attempts = tried.len(), "no backend answered, sending 502");
    let text = format!("no replica of service {service} answered\n");
    Ok(plain(StatusCode::BAD_GATEWAY, text, Arc::clone(&last.stats), start))
}

/// Picks a backend and counts the request in flight on it; also returns the `Set-Cookie`
/// its answer needs. A backend that left the set between the plan load and the count is
/// skipped; the plan was already swapped then, so the next load no longer offers it (bounded
/// anyway, in case the set flaps). `route` is decided on the first plan loaded.
fn acquire(
    shared: &Shared,
    tried: &[Arc<BackendState>],
    headers: &HeaderMap,
    route: &mut Option<Route>,
) -> Option<(InFlight, Option<HeaderValue>)> {
    for _ in 0..4 {
        let seq = shared.seq.fetch_add(1, Ordering::Relaxed);
        let plan = shared.plan.load();
        let route = *route.get_or_insert_with(|| plan.route(headers));
        let (backend, set_cookie) = plan.pick_routed(route, seq, tried)?;
        if let Some(guard) = backend.try_acquire() {
            return Some((guard, set_cookie.cloned()));
        }
    }
    None
}

fn respond(
    shared: &Arc<Shared>,
    mut resp: Response<Incoming>,
    conn: Conn,
    guard: InFlight,
    start: Instant,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Response<RespBody> {
    let stats = &guard.backend().stats;
    let status = resp.status();
    if let (Some(client), StatusCode::SWITCHING_PROTOCOLS) = (client_upgrade, status) {
        let backend = hyper::upgrade::on(&mut resp);
        headers::strip_hop_by_hop(resp.headers_mut(), true);
        // The handshake is the request; the tunnel that follows only counts as in flight.
        stats.record(status.as_u16(), start.elapsed());
        spawn_tunnel(shared, client, backend, conn, guard);
        return resp.map(|_| RespBody::full(bytes::Bytes::new(), None));
    }
    headers::strip_hop_by_hop(resp.headers_mut(), false);
    let record = Record {
        counted: Counted::Backend(guard),
        start,
        status: status.as_u16(),
    };
    resp.map(|body| RespBody::stream(body, record, conn))
}

fn plain(
    status: StatusCode,
    text: String,
    stats: Arc<crate::metrics::RevisionStats>,
    start: Instant,
) -> Response<RespBody> {
    let record = Record {
        counted: Counted::Router(stats),
        start,
        status: status.as_u16(),
    };
    let mut resp = Response::new(RespBody::full(text, Some(record)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Copies bytes between the client and the backend once both upgrades complete.
fn spawn_tunnel(
    shared: &Arc<Shared>,
    client: hyper::upgrade::OnUpgrade,
    backend: hyper::upgrade::OnUpgrade,
    conn: Conn,
    guard: InFlight,
) {
    let track = Shared::track(shared);
    let mut cut = guard.backend().cut.subscribe();
    let mut phase = shared.phase.subscribe();
    let service = shared.config.service.clone();
    tokio::spawn(async move {
        let _track = track;
        let id = guard.backend().backend.id.clone();
        // The backend connection hands its socket to the upgrade when it finishes.
        let backend = async move {
            conn.finish().await;
            backend.await
        };
        let (client, backend) = match tokio::try_join!(client, backend) {
            Ok(pair) => pair,
            Err(error) => {
                tracing::debug!(%service, backend = %id, %error, "upgrade did not complete");
                return;
            }
        };
        let (mut client, mut backend) = (TokioIo::new(client), TokioIo::new(backend));
        tokio::select! {
            copied = tokio::io::copy_bidirectional(&mut client, &mut backend) => {
                if let Err(error) = copied {
                    tracing::debug!(%service, backend = %id, %error, "upgraded connection ended");
                }
            }
            _ = cut.wait_for(|cut| *cut) => {
                tracing::info!(%service, backend = %id, "closing upgraded connection: drain timed out");
            }
            _ = phase.wait_for(|p| *p == Phase::Closed) => {
                tracing::info!(%service, backend = %id, "closing upgraded connection: router shut down");
            }
        }
        drop(guard);
    });
}
