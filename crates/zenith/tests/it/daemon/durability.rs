//! kill -9 of the daemon: the apps come back by themselves, replicas are adopted rather than
//! restarted, nothing recorded is lost, nothing is left orphaned. And a graceful SIGTERM.

use std::time::Duration;

use super::{Daemon, demo_spec, free_port, get, wait_for};

fn pids(d: &Daemon, app: &str) -> Vec<u64> {
    let s = d.status(app);
    let mut p: Vec<u64> = s["services"][0]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["pid"].as_u64().unwrap())
        .collect();
    p.sort();
    p
}

/// Processes that carry this daemon's data dir's replicas (found by their environment).
fn replica_processes(app: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("environ"))
                .map(|env| {
                    env.split(|b| *b == 0)
                        .any(|v| v == format!("ZENITH_APP={app}").as_bytes())
                })
                .unwrap_or(false)
        })
        .count()
}

#[test]
fn kill_9_of_the_daemon_loses_nothing_and_orphans_nothing() {
    let d = Daemon::start();
    let port = free_port();
    let app = format!("dur{}", port);
    let v1 = d.spec("v1.toml", &demo_spec(&app, port, "v1", 2, ""));
    d.ok(&["deploy", "-f", v1.to_str().unwrap()]);
    let v2 = d.spec("v2.toml", &demo_spec(&app, port, "v2", 3, ""));
    d.ok(&["deploy", "-f", v2.to_str().unwrap()]);
    let before = pids(&d, &app);
    assert_eq!(before.len(), 3);
    let history = d.ok(&["rollout", "history", &app]);
    let audit = d.ok(&["audit"]);

    let d = d.crash_and_restart();
    wait_for(Duration::from_secs(20), "the app to be back", || {
        d.status(&app)["services"][0]["ready_replicas"] == 3
    });
    assert_eq!(pids(&d, &app), before, "replicas were restarted instead of adopted");
    assert_eq!(replica_processes(&app), 3, "orphaned replicas");
    assert_eq!(get(port, "/").unwrap().1, "hello from v2\n");
    assert_eq!(d.ok(&["rollout", "history", &app]), history);
    assert!(d.ok(&["audit"]).starts_with(audit.lines().next().unwrap()));

    // A crash in the middle of a rollout: the new daemon finishes it.
    let v3 = d.spec("v3.toml", &demo_spec(&app, port, "v3", 3, ""));
    d.ok(&["deploy", "-f", v3.to_str().unwrap(), "--no-wait"]);
    std::thread::sleep(Duration::from_millis(400));
    let d = d.crash_and_restart();
    wait_for(Duration::from_secs(40), "the interrupted rollout to finish", || {
        let s = d.status(&app);
        s["active_revision"] == 3 && s["services"][0]["ready_replicas"] == 3
    });
    wait_for(Duration::from_secs(20), "old replicas to be gone", || {
        replica_processes(&app) == 3
    });
    assert_eq!(get(port, "/").unwrap().1, "hello from v3\n");
}

#[test]
fn sigterm_stops_the_apps_gracefully() {
    let mut d = Daemon::start();
    let port = free_port();
    let app = format!("term{port}");
    let marker = d.path("stopped.txt");
    let spec = demo_spec(&app, port, "v1", 2, "").replace(
        "env = { DEMO_VERSION = \"v1\" }",
        &format!(
            "env = {{ DEMO_VERSION = \"v1\", MARKER = \"{}\" }}\npre_stop = \"echo $ZENITH_REPLICA_ID >> $MARKER\"",
            marker.display()
        ),
    );
    let spec = d.spec("v1.toml", &spec);
    d.ok(&["deploy", "-f", spec.to_str().unwrap()]);
    assert_eq!(replica_processes(&app), 2);
    // A client following the logs must not hold the shutdown up.
    let mut follower = d
        .cmd()
        .args(["logs", &app, "--follow"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let status = d.terminate();
    assert!(status.success(), "{status:?}\n{}", d.log());
    assert_eq!(replica_processes(&app), 0);
    assert!(get(port, "/").is_err());
    assert!(!d.data().join("daemon.json").exists());
    let hooks = std::fs::read_to_string(&marker).unwrap();
    assert_eq!(
        hooks.lines().count(),
        2,
        "each replica's pre-stop hook runs once: {hooks}"
    );
    // The stream ended with the daemon.
    wait_for(Duration::from_secs(10), "logs --follow to end", || {
        follower.try_wait().unwrap().is_some()
    });
}

#[test]
fn kill_9_at_many_instants_of_rollouts_always_converges() {
    let mut d = Daemon::start();
    let port = free_port();
    let app = format!("many{port}");
    let v0 = d.spec("v0.toml", &demo_spec(&app, port, "v0", 2, ""));
    d.ok(&["deploy", "-f", v0.to_str().unwrap()]);
    for (i, delay_ms) in [0u64, 100, 250, 500, 900].into_iter().enumerate() {
        let version = format!("v{}", i + 1);
        let spec = d.spec(&format!("{version}.toml"), &demo_spec(&app, port, &version, 2, ""));
        d.ok(&["deploy", "-f", spec.to_str().unwrap(), "--no-wait"]);
        std::thread::sleep(Duration::from_millis(delay_ms));
        d = d.crash_and_restart();
        let want = format!("hello from {version}\n");
        wait_for(Duration::from_secs(40), "the rollout to converge after kill -9", || {
            let s = d.status(&app);
            s["active_revision"] == (i as u64 + 2)
                && s["services"][0]["ready_replicas"] == 2
                && s["services"][0]["replicas"].as_array().unwrap().len() == 2
        });
        wait_for(Duration::from_secs(20), "leftover replicas to go", || {
            replica_processes(&app) == 2
        });
        assert_eq!(get(port, "/").unwrap().1, want, "after a kill at {delay_ms} ms");
    }
    let history = d.ok(&["rollout", "history", &app, "--output-format", "json"]);
    let revs: serde_json::Value = serde_json::from_str(&history).unwrap();
    assert_eq!(revs.as_array().unwrap().len(), 6, "{history}");
}
