//! Weighted splits and the metrics canary analysis reads: exact counts by status class and
//! revision, plausible percentiles, windows, and the Prometheus text.

use http::StatusCode;

use crate::common::{TestBackend, client, eventually, get, router, weights};

#[tokio::test]
async fn weights_split_traffic_between_revisions() {
    let (stable, canary) = (TestBackend::start("s", 1).await, TestBackend::start("c", 2).await);
    let router = router();
    router.set_backends(vec![stable.backend(), canary.backend()]);
    router.set_weights(weights(&[(1, 90), (2, 10)]));
    let client = client();
    for _ in 0..1000 {
        assert_eq!(get(&client, &router, "/").await.0, StatusCode::OK);
    }
    let total = |r| router.metrics().per_revision.get(&r).map_or(0, |m| m.requests);
    eventually("all recorded", || total(1) + total(2) == 1000).await;
    assert!((50..=150).contains(&total(2)), "canary got {}", total(2));

    // Back to an even spread by replica count.
    router.set_weights(None);
    let before = router.snapshot();
    for _ in 0..100 {
        get(&client, &router, "/").await;
    }
    eventually("all recorded", || total(1) + total(2) == 1100).await;
    let window = router.snapshot().since(&before);
    let (w1, w2) = (window.per_revision[&1].requests, window.per_revision[&2].requests);
    assert_eq!(w1 + w2, 100);
    // Even spread; not exactly 50/50 since an idle replica can look busy for the instant
    // between a response's last byte and its in-flight release.
    assert!((30..=70).contains(&w2), "{w1}/{w2}");
}

#[tokio::test]
async fn counts_by_status_class_are_exact_and_render_as_prometheus() {
    let backend = TestBackend::start("a", 4).await;
    let router = router();
    router.set_backends(vec![backend.backend()]);
    let client = client();
    for (path, times) in [("/", 3), ("/status/302", 1), ("/status/404", 2), ("/status/503", 1)] {
        for _ in 0..times {
            get(&client, &router, path).await;
        }
    }
    eventually("all recorded", || router.metrics().per_revision[&4].requests == 7).await;
    let m = &router.metrics().per_revision[&4];
    let classes = (m.status_1xx, m.status_2xx, m.status_3xx, m.status_4xx, m.status_5xx);
    assert_eq!(classes, (0, 3, 1, 2, 1));
    assert_eq!((m.proxy_errors, m.in_flight), (0, 0));
    assert!(m.latency_p50_ms > 0.0, "{m:?}");
    assert!(m.latency_p50_ms <= m.latency_p95_ms && m.latency_p95_ms <= m.latency_p99_ms);
    assert!(m.latency_p99_ms <= m.latency_max_ms * 1.01);
    assert!(m.latency_sum_ms >= m.latency_max_ms);

    let before = router.snapshot();
    get(&client, &router, "/status/500").await;
    eventually("recorded", || router.metrics().per_revision[&4].requests == 8).await;
    let window = router.snapshot().since(&before);
    let w = &window.per_revision[&4];
    assert_eq!((w.requests, w.status_5xx, w.status_2xx), (1, 1, 0));
    assert!(w.latency_max_ms > 0.0);

    let metrics = router.metrics();
    let text = zenith_router::render_prometheus(&[("web", &metrics)]);
    for line in [
        r#"zenith_router_requests_total{service="web",revision="4",code_class="2xx"} 3"#,
        r#"zenith_router_requests_total{service="web",revision="4",code_class="5xx"} 2"#,
        r#"zenith_router_request_duration_seconds_count{service="web",revision="4"} 8"#,
        r#"zenith_router_in_flight{service="web",revision="4"} 0"#,
        r#"zenith_router_proxy_errors_total{service="web",revision="4"} 0"#,
        "# TYPE zenith_router_request_duration_seconds summary",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
    }
    assert!(text.contains(r#"zenith_router_request_duration_seconds{service="web",revision="4",quantile="0.99"} "#));
    let json = serde_json_like(&metrics);
    assert!(json.contains("status_4xx"));
}

/// `RouterMetrics` is `Serialize`; checked through `Debug` here to avoid a JSON dependency.
fn serde_json_like(metrics: &zenith_router::RouterMetrics) -> String {
    fn assert_serialize<T: serde::Serialize>(_: &T) {}
    assert_serialize(metrics);
    format!("{metrics:?}")
}
