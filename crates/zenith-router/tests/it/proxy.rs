//! Plain proxying: keep-alive on both sides, header rewriting, streaming in both directions,
//! and the answer when there is no backend.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Channel};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

use crate::common::{TestBackend, client, eventually, full, get, router};

#[tokio::test]
async fn keeps_connections_alive_on_both_sides() {
    let backend = TestBackend::start("a", 1).await;
    let router = router();
    router.set_backends(vec![backend.backend()]);

    // Two requests on one client connection, written back to back.
    let mut stream = tokio::net::TcpStream::connect(router.local_addr()).await.unwrap();
    let req = "GET / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n";
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while text.matches("HTTP/1.1 200").count() < 2 || !text.ends_with('a') {
        let n = stream.read(&mut buf).await.unwrap();
        assert_ne!(n, 0, "router closed the keep-alive connection: {text}");
        text += std::str::from_utf8(&buf[..n]).unwrap();
    }

    let client = client();
    for _ in 0..20 {
        assert_eq!(get(&client, &router, "/").await, (StatusCode::OK, "a".into()));
    }
    // 22 requests reused pooled backend connections. Not exactly one: a request can arrive
    // before the pool got the previous connection back, and then a second one is opened.
    let opened = backend.connections.load(Ordering::SeqCst);
    assert!(
        (1..=3).contains(&opened),
        "{opened} backend connections for 22 requests"
    );
}

#[tokio::test]
async fn strips_hop_by_hop_headers_and_adds_forwarded_ones() {
    let backend = TestBackend::start("a", 1).await;
    let router = router();
    router.set_backends(vec![backend.backend()]);
    let req = Request::get(format!("http://{}/headers", router.local_addr()))
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "secret")
        .header("proxy-authorization", "Basic eA==")
        .header("x-end-to-end", "kept")
        .body(full(""))
        .unwrap();
    let resp = client().request(req).await.unwrap();
    assert_eq!(resp.headers()["x-backend"], "a");
    let seen = resp.into_body().collect().await.unwrap().to_bytes();
    let seen = String::from_utf8(seen.to_vec()).unwrap();
    assert!(seen.contains("x-end-to-end: kept\n"), "{seen}");
    assert!(seen.contains("x-forwarded-for: 127.0.0.1\n"), "{seen}");
    assert!(seen.contains("x-forwarded-proto: http\n"), "{seen}");
    assert!(
        seen.contains(&format!("x-forwarded-host: {}\n", router.local_addr())),
        "{seen}"
    );
    assert!(!seen.contains("x-hop"), "{seen}");
    assert!(!seen.contains("proxy-authorization"), "{seen}");
}

#[tokio::test]
async fn streams_response_before_the_backend_finishes() {
    let backend = TestBackend::start("a", 1).await;
    let router = router();
    router.set_backends(vec![backend.backend()]);
    let uri = format!("http://{}/stream", router.local_addr());
    let resp = client()
        .request(Request::get(uri).body(full("")).unwrap())
        .await
        .unwrap();
    let mut body = resp.into_body();
    // The backend holds the second chunk until the gate opens, so this first chunk can only
    // arrive if the router forwards frames as they come.
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "first\n");
    backend.open_gate();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest, "second\n");
}

#[tokio::test]
async fn streams_request_body_and_large_echo() {
    let backend = TestBackend::start("a", 1).await;
    let router = router();
    router.set_backends(vec![backend.backend()]);
    let (mut tx, body) = Channel::<Bytes, hyper::Error>::new(1);
    let uri = format!("http://{}/echo", router.local_addr());
    let pending = tokio::spawn(client().request(Request::post(uri).body(body.boxed()).unwrap()));
    // The echo answers as soon as the first chunk arrives; reading the echoed chunk before
    // sending the next proves the request body is not buffered either.
    tx.send_data(Bytes::from_static(b"chunk-0;")).await.unwrap();
    let mut resp_body = pending.await.unwrap().unwrap().into_body();
    let echoed = resp_body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(echoed, "chunk-0;");
    let block = Bytes::from(vec![b'x'; 64 * 1024]);
    let sender = tokio::spawn(async move {
        for _ in 0..128 {
            tx.send_data(block.clone()).await.unwrap();
        }
    });
    let rest = resp_body.collect().await.unwrap().to_bytes();
    sender.await.unwrap();
    assert_eq!(rest.len(), 128 * 64 * 1024);
}

#[tokio::test]
async fn no_backend_answers_503_and_counts_a_proxy_error() {
    let router = router();
    let (status, body) = get(&client(), &router, "/").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, "service web has no healthy replica\n");
    eventually("503 to be counted", || router.metrics().unrouted.requests == 1).await;
    let unrouted = router.metrics().unrouted;
    assert_eq!((unrouted.status_5xx, unrouted.proxy_errors), (1, 1));
}

#[tokio::test]
async fn binding_a_port_in_use_is_an_error() {
    let router = router();
    let err = zenith_router::Router::bind(router.local_addr(), Default::default()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
}

#[tokio::test]
async fn idle_backend_connections_close_after_the_pool_timeout_without_traffic() {
    // A backend that reports when its one connection ends.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let closed = Arc::new(Notify::new());
    let notify = Arc::clone(&closed);
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let answer = service_fn(|_| async { Ok::<_, Infallible>(Response::new(full("ok"))) });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), answer)
            .await;
        notify.notify_one();
    });
    let config = zenith_router::RouterConfig {
        service: "web".into(),
        pool_idle_timeout: Duration::from_millis(200),
        ..Default::default()
    };
    let router = zenith_router::Router::bind("127.0.0.1:0".parse().unwrap(), config).unwrap();
    router.set_backends(vec![zenith_router::Backend {
        id: "a".into(),
        addr,
        revision: 1,
    }]);
    assert_eq!(get(&client(), &router, "/").await, (StatusCode::OK, "ok".into()));
    // No further request comes; the router still closes the pooled connection.
    tokio::time::timeout(Duration::from_secs(10), closed.notified())
        .await
        .expect("idle backend connection closed");
}
