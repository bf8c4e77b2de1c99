//! Upgraded connections pass through, count as in flight while open, and are cut when a drain
//! times out.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{eventually, open_upgrade, router, upgrade_echo_backend};

#[tokio::test]
async fn upgrade_passes_through_and_counts_in_flight_until_closed() {
    let (backend, backend_closed) = upgrade_echo_backend("ws", 1).await;
    let router = router();
    router.set_backends(vec![backend]);
    let mut stream = open_upgrade(&router).await;
    for msg in [&b"ping"[..], b"pong with more bytes"] {
        stream.write_all(msg).await.unwrap();
        let mut buf = vec![0u8; msg.len()];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, msg);
    }
    let m = &router.metrics().per_revision[&1];
    assert_eq!((m.status_1xx, m.in_flight), (1, 1));

    drop(stream);
    backend_closed.notified().await;
    eventually("tunnel to close", || router.metrics().per_revision[&1].in_flight == 0).await;
}

#[tokio::test]
async fn drain_timeout_cuts_an_upgraded_connection() {
    let (backend, _) = upgrade_echo_backend("ws", 1).await;
    let router = router();
    router.set_backends(vec![backend]);
    let mut stream = open_upgrade(&router).await;
    stream.write_all(b"hello").await.unwrap();
    let mut buf = [0u8; 5];
    stream.read_exact(&mut buf).await.unwrap();

    router.set_backends(vec![]);
    let outcome = router.drain("ws", Duration::from_millis(100)).await;
    assert_eq!(outcome, zenith_router::DrainOutcome { drained: false, cut: 1 });
    // The router closed the client side of the tunnel.
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .unwrap();
    assert_eq!(n.unwrap_or(0), 0);
    eventually("tunnel released", || router.metrics().per_revision[&1].in_flight == 0).await;
}
