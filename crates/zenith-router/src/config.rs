//! The plain data the daemon hands the router (its configuration, the backends it should
//! use, the pins of a rollout) and the plain data it gets back (drain outcomes, errors). Kept
//! apart from the runtime state so the daemon can build these values without touching
//! sockets.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

/// How a [`Router`](crate::Router) behaves; `Default` suits a service on the same host.
///
/// ```
/// use std::time::Duration;
/// let config = zenith_router::RouterConfig {
///     service: "web".into(),
///     connect_timeout: Duration::from_secs(1),
///     ..Default::default()
/// };
/// assert_eq!(config.service, "web");
/// ```
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// The service this router fronts; only a label for logs and metrics.
    pub service: String,
    /// How long to wait for a TCP connection to a backend before trying another one.
    /// Backends run on this host, so a connection that takes long is a dead backend.
    pub connect_timeout: Duration,
    /// How long an idle pooled connection to a backend is kept.
    pub pool_idle_timeout: Duration,
    /// How long a client may take to send its request head (slow-loris protection); `None`
    /// turns the per-request timer off.
    pub header_read_timeout: Option<Duration>,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            service: String::new(),
            connect_timeout: Duration::from_secs(2),
            pool_idle_timeout: Duration::from_secs(60),
            header_read_timeout: Some(Duration::from_secs(30)),
        }
    }
}

/// One replica the router may send requests to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Backend {
    /// Stable identity of the replica, used by [`Router::drain`](crate::Router::drain).
    pub id: String,
    /// Where the replica listens (plain HTTP/1.1).
    pub addr: SocketAddr,
    /// The deploy revision the replica runs; metrics and weights are keyed on it.
    pub revision: u64,
}

/// Which revisions a rollout in progress names, and whether clients stick to the revision they
/// were first given. Handed to [`Router::set_pins`](crate::Router::set_pins) for the length of
/// a rollout; outside one the router has no pins and parses neither header nor cookie.
///
/// ```
/// let pins = zenith_router::Pins { stable: Some(6), canary: Some(7), sticky: true };
/// assert_ne!(pins, zenith_router::Pins::default());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pins {
    /// The revision `X-Zenith-Version: stable` reaches.
    pub stable: Option<u64>,
    /// The revision `X-Zenith-Version: canary` reaches, even at weight 0.
    pub canary: Option<u64>,
    /// Whether a cookie keeps each client on the revision it was drawn first.
    pub sticky: bool,
}

/// What [`Router::drain`](crate::Router::drain) or [`Router::shutdown`](crate::Router::shutdown)
/// achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct DrainOutcome {
    /// True when everything in flight finished before the timeout.
    pub drained: bool,
    /// Requests and upgraded connections still open at the timeout. Upgraded connections
    /// (WebSocket and the like) are closed by the router; plain requests still waiting on the
    /// backend are left to finish or fail when the caller stops it.
    pub cut: u64,
}

/// Errors the router reports to its caller.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// The listening socket could not be set up.
    #[error("router for service {service:?} could not listen on {addr}: {source}")]
    Bind {
        service: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// `Router::bind` was called outside a tokio runtime.
    #[error("router for service {service:?} must be started from inside a tokio runtime")]
    NoRuntime { service: String },
}

impl From<RouterError> for std::io::Error {
    fn from(err: RouterError) -> Self {
        let kind = match &err {
            RouterError::Bind { source, .. } => source.kind(),
            RouterError::NoRuntime { .. } => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, err)
    }
}
