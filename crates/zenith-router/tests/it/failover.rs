//! No request is lost when a backend goes away: refused connections move to another backend
//! (with their body), and idempotent requests survive a backend dying before it answered.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::BodyExt;

use crate::common::{TestBackend, client, eventually, full, get, router};

/// An address nothing listens on: bound, then released.
async fn dead_addr() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn refused_connection_moves_to_another_backend_with_its_body() {
    let alive = TestBackend::start("alive", 1).await;
    let router = router();
    let dead = zenith_router::Backend {
        id: "dead".into(),
        addr: dead_addr().await,
        revision: 1,
    };
    router.set_backends(vec![dead, alive.backend()]);
    let client = client();
    for i in 0..20 {
        // POST with a body: not idempotent, but nothing was sent to the refusing backend.
        let body = format!("payload-{i}");
        let uri = format!("http://{}/echo", router.local_addr());
        let resp = client
            .request(Request::post(uri).body(full(body.clone())).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), Bytes::from(body));
    }
    // The dead backend was tried (it gets half the first picks) and counted.
    assert!(router.metrics().per_revision[&1].proxy_errors > 0);
    assert_eq!(router.metrics().per_revision[&1].status_2xx, 20);
}

#[tokio::test]
async fn all_backends_refusing_answers_502() {
    let router = router();
    let dead = zenith_router::Backend {
        id: "dead".into(),
        addr: dead_addr().await,
        revision: 3,
    };
    router.set_backends(vec![dead]);
    let (status, _) = get(&client(), &router, "/").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    eventually("502 counted", || router.metrics().per_revision[&3].requests == 1).await;
    let m = &router.metrics().per_revision[&3];
    assert_eq!((m.status_5xx, m.proxy_errors), (1, 1));
}

#[tokio::test]
async fn killing_a_backend_mid_stream_loses_no_sequential_request() {
    let (a, b) = (TestBackend::start("a", 1).await, TestBackend::start("b", 1).await);
    let router = router();
    router.set_backends(vec![a.backend(), b.backend()]);
    let client = client();
    let mut a = Some(a);
    for i in 0..200 {
        if i == 60 {
            a.take().unwrap().kill().await;
        }
        let (status, body) = get(&client, &router, "/").await;
        assert_eq!(status, StatusCode::OK, "request {i}: {body}");
    }
    eventually("all recorded", || router.metrics().per_revision[&1].requests == 200).await;
    let m = &router.metrics().per_revision[&1];
    assert_eq!(m.status_2xx, 200);
    // The dead backend stayed in the set, so attempts did hit it and were retried.
    assert!(m.proxy_errors > 0);
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_backend_mid_stream_loses_no_concurrent_request() {
    let (a, b) = (TestBackend::start("a", 1).await, TestBackend::start("b", 1).await);
    let router = router();
    router.set_backends(vec![a.backend(), b.backend()]);
    let client = client();
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, router, done) = (client.clone(), router.clone(), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            for _ in 0..100 {
                let (status, body) = get(&client, &router, "/").await;
                assert_eq!(status, StatusCode::OK, "{body}");
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    // Kill one backend while the eight clients are busy.
    eventually("some traffic", || done.load(Ordering::SeqCst) >= 150).await;
    a.kill().await;
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(done.load(Ordering::SeqCst), 800);
    eventually("all recorded", || router.metrics().per_revision[&1].requests == 800).await;
    let m = &router.metrics().per_revision[&1];
    assert_eq!((m.status_2xx, m.status_5xx), (800, 0));
    assert!(m.proxy_errors > 0);
    drop(b);
}
