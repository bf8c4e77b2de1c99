//! Draining a removed backend: its slow request finishes, new requests go elsewhere, and the
//! drain resolves only then. Shutdown does the same for the whole router.

use std::sync::atomic::Ordering;
use std::time::Duration;

use http::StatusCode;

use crate::common::{TestBackend, client, eventually, get, router};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_waits_for_the_slow_request_while_new_ones_go_elsewhere() {
    let (old, new) = (TestBackend::start("old", 1).await, TestBackend::start("new", 2).await);
    let router = router();
    router.set_backends(vec![old.backend()]);
    let client = client();
    let slow = tokio::spawn({
        let (client, router) = (client.clone(), router.clone());
        async move { get(&client, &router, "/slow").await }
    });
    eventually("slow request at the backend", || {
        old.waiting.load(Ordering::SeqCst) == 1
    })
    .await;

    router.set_backends(vec![new.backend()]);
    let drain = tokio::spawn(router.drain("old", Duration::from_secs(60)));
    for _ in 0..10 {
        assert_eq!(get(&client, &router, "/").await, (StatusCode::OK, "new".into()));
    }
    assert!(!drain.is_finished(), "drain resolved while a request was in flight");
    assert_eq!(router.metrics().per_revision[&1].in_flight, 1);

    old.open_gate();
    assert_eq!(slow.await.unwrap(), (StatusCode::OK, "old".into()));
    let outcome = drain.await.unwrap();
    assert_eq!(outcome, zenith_router::DrainOutcome { drained: true, cut: 0 });
}

#[tokio::test]
async fn drain_of_an_idle_or_unknown_backend_resolves_at_once() {
    let a = TestBackend::start("a", 1).await;
    let router = router();
    router.set_backends(vec![a.backend()]);
    // Still in the set: refused rather than cutting a live replica.
    let outcome = router.drain("a", Duration::from_secs(60)).await;
    assert!(!outcome.drained);
    router.set_backends(vec![]);
    assert!(router.drain("a", Duration::from_secs(60)).await.drained);
    assert!(router.drain("never-seen", Duration::from_secs(60)).await.drained);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_requests_and_stops_accepting() {
    let a = TestBackend::start("a", 1).await;
    let router = router();
    router.set_backends(vec![a.backend()]);
    let slow = tokio::spawn({
        let (client, router) = (client(), router.clone());
        async move { get(&client, &router, "/slow").await }
    });
    eventually("slow request at the backend", || a.waiting.load(Ordering::SeqCst) == 1).await;
    let shutdown = tokio::spawn({
        let router = router.clone();
        async move { router.shutdown(Duration::from_secs(60)).await }
    });
    // The listener closes at once: new connections are refused.
    let addr = router.local_addr();
    for _ in 0..1000 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    assert!(!shutdown.is_finished());

    a.open_gate();
    assert_eq!(slow.await.unwrap(), (StatusCode::OK, "a".into()));
    let outcome = shutdown.await.unwrap();
    assert_eq!(outcome, zenith_router::DrainOutcome { drained: true, cut: 0 });
}
