//! The Prometheus text exposition of router metrics, for users who already run Prometheus.
//! Canary analysis does not go through it; it reads [`RouterMetrics`] directly.
//!
//! Latency is a summary (quantiles 0.5/0.95/0.99 plus `_sum`/`_count`) rather than a bucketed
//! histogram: the router already holds exact HDR histograms per revision, and quantiles
//! computed from them are more precise than any fixed bucket layout.

use std::fmt::Write;

use crate::metrics::{RevisionMetrics, RouterMetrics};

/// Renders the metrics of several routers, `(service, metrics)` each, as one exposition.
///
/// ```
/// let text = zenith_router::render_prometheus(&[("web", &Default::default())]);
/// assert!(text.contains("# TYPE zenith_router_requests_total counter"));
/// ```
pub fn render_prometheus(routers: &[(&str, &RouterMetrics)]) -> String {
    let mut out = String::with_capacity(1024);
    let series = || {
        routers.iter().flat_map(|(service, metrics)| {
            let routed = metrics.per_revision.iter().map(|(r, m)| (*service, r.to_string(), m));
            let unrouted = (metrics.unrouted.requests > 0 || metrics.unrouted.proxy_errors > 0)
                .then(|| (*service, "none".to_owned(), &metrics.unrouted));
            routed.chain(unrouted)
        })
    };

    header(
        &mut out,
        "zenith_router_requests_total",
        "counter",
        "Requests answered, by revision and status class.",
    );
    for (service, revision, m) in series() {
        for (class, count) in classes(m) {
            let labels = labels(service, &revision);
            let _ = writeln!(
                out,
                "zenith_router_requests_total{{{labels},code_class=\"{class}\"}} {count}"
            );
        }
    }

    header(
        &mut out,
        "zenith_router_request_duration_seconds",
        "summary",
        "Time from request to the last byte of the response.",
    );
    for (service, revision, m) in series() {
        let labels = labels(service, &revision);
        for (q, ms) in [
            ("0.5", m.latency_p50_ms),
            ("0.95", m.latency_p95_ms),
            ("0.99", m.latency_p99_ms),
        ] {
            let _ = writeln!(
                out,
                "zenith_router_request_duration_seconds{{{labels},quantile=\"{q}\"}} {}",
                ms / 1000.0
            );
        }
        let _ = writeln!(
            out,
            "zenith_router_request_duration_seconds_sum{{{labels}}} {}",
            m.latency_sum_ms / 1000.0
        );
        let _ = writeln!(
            out,
            "zenith_router_request_duration_seconds_count{{{labels}}} {}",
            m.requests
        );
    }

    header(
        &mut out,
        "zenith_router_in_flight",
        "gauge",
        "Requests and upgraded connections open now.",
    );
    for (service, revision, m) in series() {
        let _ = writeln!(
            out,
            "zenith_router_in_flight{{{}}} {}",
            labels(service, &revision),
            m.in_flight
        );
    }

    header(
        &mut out,
        "zenith_router_proxy_errors_total",
        "counter",
        "Failed attempts to reach a backend, and requests that found none.",
    );
    for (service, revision, m) in series() {
        let _ = writeln!(
            out,
            "zenith_router_proxy_errors_total{{{}}} {}",
            labels(service, &revision),
            m.proxy_errors
        );
    }
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn classes(m: &RevisionMetrics) -> [(&'static str, u64); 5] {
    [
        ("1xx", m.status_1xx),
        ("2xx", m.status_2xx),
        ("3xx", m.status_3xx),
        ("4xx", m.status_4xx),
        ("5xx", m.status_5xx),
    ]
}

fn labels(service: &str, revision: &str) -> String {
    format!("service=\"{}\",revision=\"{revision}\"", escape(service))
}

/// Label values escape backslash, double quote and newline (the exposition format's rules).
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_each_family_with_escaped_labels() {
        let mut metrics = RouterMetrics::default();
        let m = RevisionMetrics {
            requests: 3,
            status_2xx: 2,
            status_5xx: 1,
            proxy_errors: 1,
            in_flight: 4,
            latency_p50_ms: 1.5,
            latency_sum_ms: 6.0,
            ..Default::default()
        };
        metrics.per_revision.insert(7, m);
        let text = render_prometheus(&[("we\"b", &metrics)]);
        let expect = [
            r#"zenith_router_requests_total{service="we\"b",revision="7",code_class="2xx"} 2"#,
            r#"zenith_router_requests_total{service="we\"b",revision="7",code_class="5xx"} 1"#,
            r#"zenith_router_request_duration_seconds{service="we\"b",revision="7",quantile="0.5"} 0.0015"#,
            r#"zenith_router_request_duration_seconds_sum{service="we\"b",revision="7"} 0.006"#,
            r#"zenith_router_request_duration_seconds_count{service="we\"b",revision="7"} 3"#,
            r#"zenith_router_in_flight{service="we\"b",revision="7"} 4"#,
            r#"zenith_router_proxy_errors_total{service="we\"b",revision="7"} 1"#,
        ];
        for line in expect {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        assert!(!text.contains("revision=\"none\""));
    }
}
