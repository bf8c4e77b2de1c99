//! Test backends and a client. A backend answers by path: `/` with its id, `/headers` with
//! the headers it received, `/status/N` with status N, `/echo` streams the request body back,
//! `/slow` and `/stream` hold until the test opens the backend's gate. `kill` drops the
//! listener and every connection at once, like a crashed process.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};
use zenith_router::{Backend, Router, RouterConfig};

pub type TestBody = BoxBody<Bytes, hyper::Error>;
pub type TestClient = Client<HttpConnector, TestBody>;

pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build_http()
}

pub fn router() -> Router {
    router_for("web")
}

/// A router for the `service` label (which names its sticky cookie).
pub fn router_for(service: &str) -> Router {
    let config = RouterConfig {
        service: service.into(),
        ..Default::default()
    };
    Router::bind("127.0.0.1:0".parse().unwrap(), config).unwrap()
}

pub fn full(body: impl Into<Bytes>) -> TestBody {
    Full::new(body.into()).map_err(|never| match never {}).boxed()
}

/// GET `path` through the router; returns status and body text.
pub async fn get(client: &TestClient, router: &Router, path: &str) -> (StatusCode, String) {
    let uri = format!("http://{}{path}", router.local_addr());
    let resp = client.request(Request::get(uri).body(full("")).unwrap()).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// Polls `cond` every 10 ms for up to 10 s; a bounded wait, not a timing assertion.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

pub struct TestBackend {
    pub id: String,
    pub addr: SocketAddr,
    pub revision: u64,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    /// Requests that reached `/slow` or `/stream` and are waiting on the gate.
    pub waiting: Arc<AtomicUsize>,
    gate: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl TestBackend {
    pub async fn start(id: &str, revision: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let waiting = Arc::new(AtomicUsize::new(0));
        let gate = watch::Sender::new(false);
        let ctx = Ctx {
            id: id.to_owned(),
            waiting: Arc::clone(&waiting),
            gate: gate.clone(),
        };
        let conns = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            // Owning the connection tasks here means aborting this task aborts them all.
            let mut open = JoinSet::new();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                conns.fetch_add(1, Ordering::SeqCst);
                let ctx = ctx.clone();
                open.spawn(async move {
                    let svc = service_fn(move |req| ctx.clone().answer(req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
                while open.try_join_next().is_some() {}
            }
        });
        Self {
            id: id.to_owned(),
            addr,
            revision,
            connections,
            waiting,
            gate,
            task,
        }
    }

    pub fn backend(&self) -> Backend {
        Backend {
            id: self.id.clone(),
            addr: self.addr,
            revision: self.revision,
        }
    }

    pub fn open_gate(&self) {
        self.gate.send_replace(true);
    }

    /// Drops the listener and all connections at once, like a crashed process.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

#[derive(Clone)]
struct Ctx {
    id: String,
    waiting: Arc<AtomicUsize>,
    gate: watch::Sender<bool>,
}

impl Ctx {
    async fn answer(self, req: Request<Incoming>) -> Result<Response<TestBody>, Infallible> {
        let path = req.uri().path().to_owned();
        let reply = |status: u16, body: TestBody| {
            let mut resp = Response::new(body);
            *resp.status_mut() = StatusCode::from_u16(status).unwrap();
            resp.headers_mut().insert("x-backend", self.id.parse().unwrap());
            Ok(resp)
        };
        if let Some(code) = path.strip_prefix("/status/") {
            return reply(code.parse().unwrap(), full(self.id.clone()));
        }
        match path.as_str() {
            "/headers" => {
                let mut text = String::new();
                for (k, v) in req.headers() {
                    text += &format!("{k}: {}\n", v.to_str().unwrap());
                }
                reply(200, full(text))
            }
            "/echo" => reply(200, req.into_body().boxed()),
            "/slow" => {
                self.wait_gate().await;
                reply(200, full(self.id.clone()))
            }
            "/stream" => {
                let (mut tx, body) = http_body_util::Channel::<Bytes, hyper::Error>::new(1);
                let me = self.clone();
                tokio::spawn(async move {
                    tx.send_data(Bytes::from_static(b"first\n")).await.unwrap();
                    me.wait_gate().await;
                    let _ = tx.send_data(Bytes::from_static(b"second\n")).await;
                });
                reply(200, body.boxed())
            }
            _ => reply(200, full(self.id.clone())),
        }
    }

    async fn wait_gate(&self) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _ = self.gate.subscribe().wait_for(|open| *open).await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A raw TCP backend that accepts any request as an upgrade (`101`) and then echoes bytes;
/// enough to test upgrade passthrough without a WebSocket library.
pub async fn upgrade_echo_backend(id: &str, revision: u64) -> (Backend, Arc<Notify>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let closed = Arc::new(Notify::new());
    let notify = Arc::clone(&closed);
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let notify = Arc::clone(&notify);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let answer = "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n";
                stream.write_all(answer.as_bytes()).await.unwrap();
                let mut buf = [0u8; 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                notify.notify_one();
            });
        }
    });
    (
        Backend {
            id: id.into(),
            addr,
            revision,
        },
        closed,
    )
}

/// Opens an upgraded connection through the router; returns the stream after the `101`.
pub async fn open_upgrade(router: &Router) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(router.local_addr()).await.unwrap();
    let req = "GET /ws HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n";
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "router closed during handshake"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.to_ascii_lowercase().contains("upgrade: echo"), "{head}");
    stream
}

pub fn weights(pairs: &[(u64, u32)]) -> Option<BTreeMap<u64, u32>> {
    Some(pairs.iter().copied().collect())
}
