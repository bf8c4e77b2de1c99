//! Canary and blue-green rollouts under steady load, through the real daemon and router: a
//! healthy canary loses no request, a canary that fails 20 % of its requests is rolled back
//! after hurting only its share, a blue-green switch and its instant rollback lose nothing,
//! the split follows the weight, sticky clients keep their version, and a daemon killed
//! mid-rollout resumes it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Daemon, api_get, free_port, get, wait_for, zenith_bin};

/// A demo-app spec with a progressive `update` table.
pub(super) fn spec(port: u16, version: &str, env: &str, update: &str) -> String {
    format!(
        r#"[app]
name = "shop"

[services.web]
command = ["{bin}", "demo-app"]
replicas = 2
port = {port}
env = {{ DEMO_VERSION = "{version}"{env} }}
stop_grace = "5s"
drain_timeout = "5s"

[services.web.health]
http = "/health"
interval = "200ms"
timeout = "1s"
retries = 2

[services.web.update]
{update}
"#,
        bin = zenith_bin().display()
    )
}

pub(super) const FAST_CANARY: &str = r#"strategy = "canary"
steps = [10, 25, 50, 75, 100]
interval = "600ms"
min_requests = 20
max_error_rate = 5
progress_deadline = "15s"
[[services.web.update.probes]]
path = "/"
body_contains = "hello"
"#;

/// What the load threads saw: per version body, failures, all requests.
#[derive(Default, Debug)]
struct Seen {
    v1: usize,
    v2: usize,
    failures: Vec<String>,
    total: usize,
}

/// Four threads requesting `/` on fresh connections until `stop`.
fn load(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Seen> {
    std::thread::spawn(move || {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut seen = Seen::default();
                    while !stop.load(Ordering::Relaxed) {
                        seen.total += 1;
                        match get(port, "/") {
                            Ok((200, b)) if b.contains("v1") => seen.v1 += 1,
                            Ok((200, b)) if b.contains("v2") => seen.v2 += 1,
                            Ok((code, body)) => seen.failures.push(format!("{code} {}", body.trim())),
                            Err(e) => seen.failures.push(e),
                        }
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    seen
                })
            })
            .collect();
        let mut all = Seen::default();
        for w in workers {
            let s = w.join().unwrap();
            all.v1 += s.v1;
            all.v2 += s.v2;
            all.total += s.total;
            all.failures.extend(s.failures);
        }
        all
    })
}

pub(super) fn deploy_v1(d: &Daemon, port: u16, update: &str) {
    let v1 = d.spec("v1.toml", &spec(port, "v1", "", update));
    let out = d.ok(&["deploy", "-f", v1.to_str().unwrap()]);
    assert!(out.contains("r1 complete"), "{out}");
}

#[test]
fn a_healthy_canary_walks_every_step_under_load_and_loses_no_request() {
    let d = Daemon::start();
    let port = free_port();
    deploy_v1(&d, port, FAST_CANARY);
    let stop = Arc::new(AtomicBool::new(false));
    let loader = load(port, stop.clone());
    std::thread::sleep(Duration::from_millis(300));

    let v2 = d.spec("v2.toml", &spec(port, "v2", "", FAST_CANARY));
    let run = d.run(&["deploy", "-f", v2.to_str().unwrap()]);
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "{out}\n--- daemon log ---\n{}", d.log());
    stop.store(true, Ordering::Relaxed);
    let seen = loader.join().unwrap();
    assert!(out.contains("r2 complete"), "{out}");
    for step in [
        "step 1/5: r2 gets 10%",
        "step 3/5: r2 gets 50%",
        "step 5/5: r2 gets 100%",
    ] {
        assert!(out.contains(step), "missing {step:?} in\n{out}");
    }
    assert!(
        seen.failures.is_empty(),
        "{} of {} failed: {:?}",
        seen.failures.len(),
        seen.total,
        seen.failures
    );
    assert!(seen.v1 > 0 && seen.v2 > 0, "{seen:?}");
    assert_eq!(get(port, "/").unwrap().1, "hello from v2\n");

    let status = d.status("shop");
    let progress = &status["rollout"]["services"][0]["progress"];
    assert_eq!(progress["stage"], "done");
    let checks = progress["checks"].as_array().unwrap();
    assert!(
        checks.iter().filter(|c| c["verdict"]["result"] == "pass").count() >= 5,
        "{checks:?}"
    );
    assert_eq!(
        status["services"][0]["replicas"].as_array().unwrap().len(),
        2,
        "v1 is gone"
    );
}

#[test]
fn a_canary_failing_a_fifth_of_its_requests_is_rolled_back_after_hurting_only_its_share() {
    let d = Daemon::start();
    let port = free_port();
    deploy_v1(&d, port, FAST_CANARY);
    let stop = Arc::new(AtomicBool::new(false));
    let loader = load(port, stop.clone());
    std::thread::sleep(Duration::from_millis(300));

    let bad = d.spec("v2.toml", &spec(port, "v2", r#", DEMO_ERROR_RATE = "20""#, FAST_CANARY));
    let out = d.run(&["deploy", "-f", bad.to_str().unwrap()]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Everything after the abort is served by v1 again.
    let after: Vec<String> = (0..50).map(|_| get(port, "/").unwrap().1).collect();
    stop.store(true, Ordering::Relaxed);
    let seen = loader.join().unwrap();

    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("error rate") && text.contains("> max 5%"), "{text}");
    assert!(text.contains("at 10% traffic"), "{text}");
    assert!(after.iter().all(|b| b == "hello from v1\n"), "{after:?}");
    // The canary served its share (10 %) and failed a fifth of that: ~2 % of the requests
    // while it was live. Bounded well below what a full switch would have cost (20 %).
    let failed = seen.failures.len();
    assert!(failed > 0, "the bad version must have been reached: {seen:?}");
    assert!(
        (failed as f64) < seen.total as f64 * 0.05,
        "{failed} of {} failed: more than the canary's share",
        seen.total
    );
    assert!(
        seen.failures.iter().all(|f| f.starts_with("500 v2 failed on purpose")),
        "{:?}",
        seen.failures
    );

    let status = d.status("shop");
    assert_eq!(status["active_revision"], 1);
    assert_eq!(status["desired_revision"], 1);
    let progress = &status["rollout"]["services"][0]["progress"];
    assert_eq!(progress["stage"], "aborted");
    assert!(
        status["services"][0]["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["revision"] == 1 || r["state"] == "stopping")
    );
    let history = d.ok(&["rollout", "history", "shop"]);
    assert!(history.contains("failed"), "{history}");
    let metrics = api_get(&d, "/metrics");
    for line in [
        r#"zenith_rollout_aborted{app="shop",service="web",revision="2",strategy="canary"} 1"#,
        r#"zenith_rollout_weight{app="shop",service="web",revision="2",strategy="canary"} 0"#,
        r#"zenith_rollout_failed_checks{app="shop",service="web",revision="2",strategy="canary"} 1"#,
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }

    // Retry rolls the failed revision out again, and it is judged (and caught) again.
    let out = d.ok(&["rollout", "retry", "shop"]);
    assert!(out.contains("r2 is rolling out again"), "{out}");
    wait_for(Duration::from_secs(30), "the retried canary to be caught again", || {
        // The load threads have stopped: a verdict needs traffic.
        for _ in 0..50 {
            let _ = get(port, "/");
        }
        let s = d.status("shop");
        s["desired_revision"] == 1 && s["rollout"]["services"][0]["progress"]["stage"] == "aborted"
    });
    let out = d.run(&["rollout", "retry", "shop", "--output-format", "json"]);
    assert!(
        out.status.success(),
        "the failed revision can be retried again: {out:?}"
    );
}

#[test]
fn a_blue_green_switch_and_its_instant_rollback_lose_no_request() {
    let update = r#"strategy = "blue-green"
scale_down_delay = "60s"
interval = "500ms"
min_requests = 20
progress_deadline = "15s"
"#;
    let d = Daemon::start();
    let port = free_port();
    deploy_v1(&d, port, update);
    let stop = Arc::new(AtomicBool::new(false));
    let loader = load(port, stop.clone());
    std::thread::sleep(Duration::from_millis(300));

    let v2 = d.spec("v2.toml", &spec(port, "v2", "", update));
    d.ok(&["deploy", "-f", v2.to_str().unwrap(), "--no-wait"]);
    wait_for(Duration::from_secs(30), "the switch to v2", || {
        get(port, "/").is_ok_and(|r| r.1 == "hello from v2\n")
    });
    // The switch is atomic: from here on, only v2 answers.
    assert!((0..30).all(|_| get(port, "/").unwrap().1 == "hello from v2\n"));
    let status = d.status("shop");
    assert_eq!(status["rollout"]["services"][0]["progress"]["stage"], "switched");
    assert_eq!(
        status["services"][0]["replicas"].as_array().unwrap().len(),
        4,
        "v1 stays warm"
    );

    let out = d.ok(&["rollout", "abort", "shop"]);
    assert!(out.contains("r2"), "{out}");
    // Instant: the very next request is answered by v1, which never stopped.
    assert!((0..30).all(|_| get(port, "/").unwrap().1 == "hello from v1\n"));
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let seen = loader.join().unwrap();
    assert!(
        seen.failures.is_empty(),
        "{} of {} failed: {:?}",
        seen.failures.len(),
        seen.total,
        seen.failures
    );
    assert!(seen.v1 > 0 && seen.v2 > 0);
    let audit = d.ok(&["audit", "--app", "shop"]);
    assert!(audit.contains("rollout abort"), "{audit}");
}

/// GET `/` with extra request headers; the status, the `Set-Cookie` value and the body.
fn get_with(port: u16, headers: &[(&str, &str)]) -> (u16, Option<String>, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(s, "GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{extra}\r\n").unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").unwrap();
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let cookie = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .map(|c| c.split(';').next().unwrap().to_string());
    (code, cookie, body.to_string())
}

pub(super) const MANUAL_CANARY: &str = r#"strategy = "canary"
steps = [{ weight = 10, pause = "manual" }, { weight = 30, pause = "manual" }, 100]
interval = "500ms"
min_requests = 10
on_quiet = "pass"
quiet_timeout = "2s"
progress_deadline = "15s"
"#;

/// A daemon with v1 serving and v2's manual canary holding its first step at 10 %.
fn canary_at_10() -> (Daemon, u16) {
    let d = Daemon::start();
    let port = free_port();
    deploy_v1(&d, port, MANUAL_CANARY);
    let v2 = d.spec("v2.toml", &spec(port, "v2", "", MANUAL_CANARY));
    d.ok(&["deploy", "-f", v2.to_str().unwrap(), "--no-wait"]);
    wait_for(Duration::from_secs(30), "the canary at 10%", || {
        d.status("shop")["rollout"]["services"][0]["progress"]["weight"] == 10
    });
    (d, port)
}

#[test]
fn the_split_follows_the_weight_and_sticky_clients_never_switch_version() {
    let (d, port) = canary_at_10();

    // Testers reach the canary on demand; pinned requests get no cookie.
    let pinned = get_with(port, &[("X-Zenith-Version", "canary")]);
    assert_eq!((pinned.1.as_deref(), pinned.2.as_str()), (None, "hello from v2\n"));
    assert_eq!(get_with(port, &[("X-Zenith-Version", "stable")]).2, "hello from v1\n");

    // Cookie-less clients are split by the weight, each told which version it got.
    let split = |n: usize| {
        let mut v2 = 0;
        for _ in 0..n {
            let (code, cookie, body) = get_with(port, &[]);
            assert_eq!(code, 200);
            let cookie = cookie.expect("a sticky cookie on every drawn request");
            assert!(cookie.starts_with("zenith-shop-web=r"), "{cookie}");
            assert_eq!(cookie.ends_with("r2"), body.contains("v2"), "{cookie} {body}");
            v2 += usize::from(body.contains("v2"));
        }
        v2 as f64 * 100.0 / n as f64
    };
    let share = split(2000);
    assert!((share - 10.0).abs() <= 3.0, "canary share {share:.1}% at weight 10");

    // Clients holding a cookie keep their version across steps.
    let clients: Vec<String> = (0..40).map(|_| get_with(port, &[]).1.unwrap()).collect();
    assert!(clients.iter().any(|c| c.ends_with("r2")) && clients.iter().any(|c| c.ends_with("r1")));
    let check_sticky = || {
        for c in &clients {
            let (_, set, body) = get_with(port, &[("Cookie", c)]);
            assert_eq!(set, None, "a sticky client is not re-drawn");
            assert_eq!(body.contains("v2"), c.ends_with("r2"), "client {c} switched version");
        }
    };
    check_sticky();
    let out = d.ok(&["rollout", "pause", "shop"]);
    assert!(out.contains("paused"), "{out}");
    let paused = |d: &Daemon| d.status("shop")["rollout"]["services"][0]["progress"]["paused"].clone();
    assert!(paused(&d).as_str().unwrap().contains("paused by a user"));
    d.ok(&["rollout", "resume", "shop"]);
    // Resumed: what holds the step now is only its own manual pause, if anything.
    assert!(!paused(&d).as_str().unwrap_or("").contains("paused by a user"));
    d.ok(&["rollout", "promote", "shop"]);
    wait_for(Duration::from_secs(20), "the canary at 30%", || {
        d.status("shop")["rollout"]["services"][0]["progress"]["weight"] == 30
    });
    check_sticky();
    let share = split(2000);
    assert!((share - 30.0).abs() <= 3.0, "canary share {share:.1}% at weight 30");
    let out = d.ok(&["rollout", "promote", "shop"]);
    assert!(out.contains("promoted past the current step"), "{out}");
    wait_for(Duration::from_secs(30), "the rollout to complete", || {
        d.status("shop")["phase"] == "complete"
    });
    // Once the rollout is over, nobody is pinned any more.
    assert_eq!(get_with(port, &[("Cookie", "zenith-shop-web=r1")]).2, "hello from v2\n");
}

#[test]
fn a_daemon_killed_mid_rollout_resumes_it_at_its_step() {
    let (d, port) = canary_at_10();

    let d = d.crash_and_restart();
    // Routed at once to the adopted replicas of both versions, by the saved weight.
    let bodies: Vec<String> = (0..300).map(|_| get(port, "/").expect("routed").1).collect();
    let v2 = bodies.iter().filter(|b| b.contains("v2")).count();
    assert!(v2 > 0 && v2 < 100, "{v2} of 300 went to the canary at 10%");
    let status = d.status("shop");
    let progress = &status["rollout"]["services"][0]["progress"];
    assert_eq!(
        (progress["stage"].as_str(), progress["step"].as_u64()),
        (Some("analysing"), Some(0))
    );
    assert_eq!(status["desired_revision"], 2);

    d.ok(&["rollout", "promote", "shop", "--full"]);
    wait_for(Duration::from_secs(30), "the rollout to complete", || {
        d.status("shop")["phase"] == "complete"
    });
    assert_eq!(get(port, "/").unwrap().1, "hello from v2\n");
    assert!(d.log().contains("resuming the rollout"), "{}", d.log());
}

#[test]
fn an_abort_in_one_service_leaves_a_service_that_finished_its_rollout_serving() {
    let (web_port, api_port) = (free_port(), free_port());
    let app = |version: &str, api_env: &str| {
        format!(
            r#"[app]
name = "shop"

[services.web]
command = ["{bin}", "demo-app"]
port = {web_port}
env = {{ DEMO_VERSION = "{version}" }}
health = {{ http = "/health", interval = "200ms", retries = 2 }}
update = {{ strategy = "canary", steps = [100], interval = "500ms", min_requests = 20 }}

[services.api]
command = ["{bin}", "demo-app"]
port = {api_port}
env = {{ DEMO_VERSION = "{version}"{api_env} }}
health = {{ http = "/health", interval = "200ms", retries = 2 }}
update = {{ strategy = "canary", steps = [10, 100], interval = "3s", min_requests = 20 }}
"#,
            bin = zenith_bin().display()
        )
    };
    let d = Daemon::start();
    let v1 = d.spec("v1.toml", &app("v1", ""));
    assert!(d.ok(&["deploy", "-f", v1.to_str().unwrap()]).contains("r1 complete"));
    let stop = Arc::new(AtomicBool::new(false));
    let web = load(web_port, stop.clone());
    let api = load(api_port, stop.clone());
    std::thread::sleep(Duration::from_millis(300));

    // web's canary completes (its v1 replicas stop); then api's fails and the rollout aborts.
    let v2 = d.spec("v2.toml", &app("v2", r#", DEMO_ERROR_RATE = "50""#));
    let out = d.run(&["deploy", "-f", v2.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    wait_for(Duration::from_secs(30), "web back on v1", || {
        get(web_port, "/").is_ok_and(|r| r.1 == "hello from v1\n")
    });
    stop.store(true, Ordering::Relaxed);
    let (web, _) = (web.join().unwrap(), api.join().unwrap());
    assert!(
        web.failures.is_empty(),
        "web must keep serving through the abort: {} of {} failed, first: {:?}",
        web.failures.len(),
        web.total,
        &web.failures[..web.failures.len().min(5)]
    );
    assert!(web.v2 > 0, "web's canary had completed on v2: {web:?}");
}
