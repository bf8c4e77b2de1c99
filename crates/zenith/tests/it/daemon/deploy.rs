//! Deploys, rolling updates and rollbacks under load; a v2 that never gets healthy; replicas
//! restarted by their policy.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Daemon, api_get, demo_spec, free_port, get, wait_for};

/// Requests the public port in a loop from two threads until stopped; returns the failures
/// and the bodies seen.
fn load(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(Vec<String>, Vec<String>, usize)> {
    std::thread::spawn(move || {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let (mut failures, mut bodies, mut n) = (Vec::new(), Vec::new(), 0);
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        match get(port, "/") {
                            Ok((200, body)) => {
                                if !bodies.contains(&body) {
                                    bodies.push(body);
                                }
                            }
                            Ok((code, body)) => failures.push(format!("{code} {body}")),
                            Err(e) => failures.push(e),
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    (failures, bodies, n)
                })
            })
            .collect();
        let mut all = (Vec::new(), Vec::new(), 0);
        for w in workers {
            let (f, b, n) = w.join().unwrap();
            all.0.extend(f);
            for body in b {
                if !all.1.contains(&body) {
                    all.1.push(body);
                }
            }
            all.2 += n;
        }
        all
    })
}

#[test]
fn rolling_update_and_rollback_lose_no_request() {
    let d = Daemon::start();
    let port = free_port();
    let v1 = d.spec("v1.toml", &demo_spec("shop", port, "v1", 2, ""));
    let out = d.ok(&["deploy", "-f", v1.to_str().unwrap()]);
    assert!(out.contains("r1 complete"), "{out}");
    assert_eq!(get(port, "/").unwrap(), (200, "hello from v1\n".into()));

    let stop = Arc::new(AtomicBool::new(false));
    let loader = load(port, stop.clone());
    std::thread::sleep(Duration::from_millis(300));

    let v2 = d.spec("v2.toml", &demo_spec("shop", port, "v2", 2, ""));
    let out = d.ok(&["deploy", "-f", v2.to_str().unwrap()]);
    assert!(out.contains("shop: r1 → r2"), "{out}");
    assert!(out.contains("r2 complete"), "{out}");
    assert_eq!(get(port, "/").unwrap().1, "hello from v2\n");

    let out = d.ok(&["rollback", "shop"]);
    assert!(out.contains("r3 complete"), "{out}");
    assert_eq!(get(port, "/").unwrap().1, "hello from v1\n");

    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (failures, bodies, n) = loader.join().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {n} requests failed: {failures:?}",
        failures.len()
    );
    assert!(bodies.contains(&"hello from v1\n".to_string()) && bodies.contains(&"hello from v2\n".to_string()));

    let history = d.ok(&["rollout", "history", "shop"]);
    assert!(history.contains("rollback to r1"), "{history}");
    let status = d.status("shop");
    assert_eq!(status["active_revision"], 3);
    assert_eq!(status["services"][0]["ready_replicas"], 2);
    assert_eq!(status["services"][0]["replicas"].as_array().unwrap().len(), 2);
    let audit = d.ok(&["audit", "--app", "shop"]);
    assert!(audit.contains("rollback") && audit.contains("deploy"), "{audit}");
}

#[test]
fn a_v2_that_never_gets_healthy_gets_no_traffic_and_v1_keeps_serving() {
    let d = Daemon::start();
    let port = free_port();
    let v1 = d.spec("v1.toml", &demo_spec("api", port, "v1", 2, ""));
    d.ok(&["deploy", "-f", v1.to_str().unwrap()]);
    let bad = demo_spec("api", port, "v2", 2, "").replace(
        "env = { DEMO_VERSION = \"v2\" }",
        "env = { DEMO_VERSION = \"v2\", DEMO_UNHEALTHY = \"1\" }",
    );
    let bad = d.spec("v2.toml", &bad);
    let stop = Arc::new(AtomicBool::new(false));
    let loader = load(port, stop.clone());
    let out = d.run(&["deploy", "-f", bad.to_str().unwrap()]);
    stop.store(true, Ordering::Relaxed);
    let (failures, bodies, _) = loader.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not healthy") && err.contains("/health"), "{err}");
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(bodies, vec!["hello from v1\n".to_string()]);

    let status = d.status("api");
    assert_eq!(status["phase"], "failed");
    assert_eq!(status["desired_revision"], 1);
    assert!(
        status["message"].as_str().unwrap().contains("r1 keeps serving"),
        "{status}"
    );
    wait_for(Duration::from_secs(20), "the v2 replicas to go", || {
        let s = d.status("api");
        s["services"][0]["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["revision"] == 1)
    });
}

#[test]
fn a_crashing_replica_is_restarted_until_the_policy_gives_up() {
    let d = Daemon::start();
    let spec = demo_spec("crashy", free_port(), "v1", 1, "")
        .replace(
            "env = { DEMO_VERSION = \"v1\" }",
            "env = { DEMO_VERSION = \"v1\", DEMO_CRASH_AFTER_MS = \"1500\" }",
        )
        .replace(
            "[services.web.health]",
            "[services.web.restart]\ncondition = \"on-failure\"\ndelay = \"200ms\"\nmax_attempts = 2\nwindow = \"1m\"\n\n[services.web.health]",
        );
    let spec = d.spec("crashy.toml", &spec);
    d.ok(&["deploy", "-f", spec.to_str().unwrap(), "--no-wait"]);
    wait_for(Duration::from_secs(40), "the restart policy to give up", || {
        let s = d.status("crashy");
        let events = s["services"][0]["events"].to_string();
        events.contains("not restarted")
    });
    let s = d.status("crashy");
    let events = s["services"][0]["events"].to_string();
    assert_eq!(events.matches("exited (exit code 3)").count(), 3, "{events}");
    assert!(events.contains("max_attempts"), "{events}");
    assert_eq!(s["phase"], "degraded", "{s}");
}

#[test]
fn a_replica_that_turns_unhealthy_is_replaced_and_status_says_so() {
    let d = Daemon::start();
    let port = free_port();
    let spec = demo_spec("sick", port, "v1", 2, "").replace(
        "env = { DEMO_VERSION = \"v1\" }",
        "env = { DEMO_VERSION = \"v1\", DEMO_UNHEALTHY_AFTER_MS = \"2500\" }",
    );
    let spec = d.spec("sick.toml", &spec);
    d.ok(&["deploy", "-f", spec.to_str().unwrap()]);
    let first: Vec<String> = d.status("sick")["services"][0]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    wait_for(Duration::from_secs(30), "unhealthy replicas to be replaced", || {
        let s = d.status("sick");
        let events = s["services"][0]["events"].to_string();
        let ids: Vec<&str> = s["services"][0]["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        events.contains("unhealthy: ") && ids.iter().any(|id| !first.iter().any(|f| f == id))
    });
    let s = d.status("sick");
    let events = s["services"][0]["events"].to_string();
    assert!(events.contains("GET /health"), "{events}");
    // The replacement carries its slot's restart count.
    let restarted = s["services"][0]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["restarts"].as_u64().unwrap() >= 1);
    assert!(restarted, "{s}");
}

#[test]
fn logs_and_metrics_come_from_the_replicas_and_the_router() {
    let d = Daemon::start();
    let port = free_port();
    let spec = d.spec("v1.toml", &demo_spec("seen", port, "v1", 1, ""));
    d.ok(&["deploy", "-f", spec.to_str().unwrap()]);
    for _ in 0..5 {
        assert_eq!(get(port, "/").unwrap().0, 200);
    }
    let logs = d.ok(&["logs", "seen", "-n", "10"]);
    assert!(logs.contains("| demo-app v1 listening on 127.0.0.1:"), "{logs}");

    // --follow streams lines written after it started: a new replica's first line. The last
    // line of the running replica comes first, which shows the stream is live before the
    // deploy (otherwise the new replica could log before the follower starts).
    let mut follow = d
        .cmd()
        .args(["logs", "seen", "-n", "1", "--follow"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("no line from logs --follow");
    assert!(
        first.contains("-r1-") && first.contains("demo-app v1 listening"),
        "{first}"
    );
    let v2 = d.spec("v2.toml", &demo_spec("seen", port, "v2", 1, ""));
    d.ok(&["deploy", "-f", v2.to_str().unwrap()]);
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("no new line from logs --follow");
    assert!(
        line.contains("-r2-") && line.contains("demo-app v2 listening"),
        "{line}"
    );
    follow.kill().unwrap();
    let _ = follow.wait();

    let body = api_get(&d, "/metrics");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    let line = body
        .lines()
        .find(|l| l.starts_with("zenith_router_requests_total") && l.contains("seen/web") && l.contains("2xx"))
        .unwrap_or_else(|| panic!("no request counter in\n{body}"));
    let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 5.0, "{line}");
    assert!(
        body.contains("zenith_app_replicas{app=\"seen\",service=\"web\",state=\"ready\"} 1"),
        "{body}"
    );

    let body = api_get(&d, "/v1/apps/seen/metrics");
    let json: serde_json::Value = serde_json::from_str(body.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert!(
        json["web"]["per_revision"]["1"]["requests"].as_u64().unwrap() >= 5,
        "{json}"
    );
}
