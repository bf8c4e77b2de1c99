//! The seed's command-line overrides of a canary: `--initial-traffic` and `--check-interval`
//! change the timeline (and are refused where they mean nothing), `--force` switches at once
//! and is audited as forced, a rollback is never judged by canary analysis again, and a newer
//! deploy supersedes a canary in progress.

use std::time::Duration;

use super::canary::{FAST_CANARY, MANUAL_CANARY, deploy_v1, spec};
use super::{Daemon, free_port, get, wait_for};

#[test]
fn overrides_shape_the_dry_run_timeline_and_force_skips_the_steps() {
    let d = Daemon::start();
    let port = free_port();
    deploy_v1(&d, port, FAST_CANARY);
    let v2 = d.spec("v2.toml", &spec(port, "v2", "", FAST_CANARY));
    let v2 = v2.to_str().unwrap();

    let plan = d.ok(&[
        "deploy",
        "-f",
        v2,
        "--dry-run",
        "--initial-traffic",
        "30",
        "--check-interval",
        "3s",
    ]);
    assert!(plan.contains("step 1/4: 30% of traffic to r2"), "{plan}");
    assert!(plan.contains("step 2/4: 50% of traffic to r2"), "{plan}");
    assert!(plan.contains("checks: every 3s"), "{plan}");
    assert!(plan.contains("(dry run: nothing changed)"), "{plan}");
    assert_eq!(d.status("shop")["desired_revision"], 1, "a dry run touches nothing");

    let out = d.run(&["deploy", "-f", v2, "--initial-traffic", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("initial"), "{out:?}");

    let out = d.ok(&["deploy", "-f", v2, "--force"]);
    assert!(out.contains("forced: start 2 replica(s) of r2"), "{out}");
    assert!(out.contains("r2 complete"), "{out}");
    assert_eq!(get(port, "/").unwrap().1, "hello from v2\n");
    let status = d.status("shop");
    assert!(
        status["rollout"]["services"][0]["progress"]["checks"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let audit = d.ok(&["audit", "--app", "shop"]);
    assert!(audit.contains("forced: created r2"), "{audit}");

    // Back to v1: health-checked, switched at once, never judged by the canary's analysis.
    let out = d.ok(&["rollback", "shop"]);
    assert!(out.contains("r3 complete"), "{out}");
    let status = d.status("shop");
    let progress = &status["rollout"]["services"][0]["progress"];
    assert_eq!(progress["strategy"], "forced");
    assert!(progress["checks"].as_array().unwrap().is_empty());
    assert_eq!(get(port, "/").unwrap().1, "hello from v1\n");
}

#[test]
fn a_newer_deploy_supersedes_a_canary_in_progress() {
    let d = Daemon::start();
    let port = free_port();
    deploy_v1(&d, port, MANUAL_CANARY);
    let weight_of = |rev: u64| {
        let s = d.status("shop");
        let r = &s["rollout"];
        r["revision"] == rev && r["services"][0]["progress"]["weight"] == 10
    };
    let v2 = d.spec("v2.toml", &spec(port, "v2", "", MANUAL_CANARY));
    d.ok(&["deploy", "-f", v2.to_str().unwrap(), "--no-wait"]);
    wait_for(Duration::from_secs(30), "r2 at 10%", || weight_of(2));
    let v3 = d.spec("v3.toml", &spec(port, "v3", "", MANUAL_CANARY));
    d.ok(&["deploy", "-f", v3.to_str().unwrap(), "--no-wait"]);
    wait_for(Duration::from_secs(30), "r3 at 10%", || weight_of(3));

    // The superseded canary gets nothing; v1 is still the stable revision.
    let bodies: Vec<String> = (0..300).map(|_| get(port, "/").unwrap().1).collect();
    assert!(
        !bodies.iter().any(|b| b.contains("v2")),
        "the superseded canary still gets traffic"
    );
    let v3_share = bodies.iter().filter(|b| b.contains("v3")).count();
    assert!((15..=45).contains(&v3_share), "{v3_share} of 300 to r3 at 10%");

    d.ok(&["rollout", "promote", "shop", "--full"]);
    wait_for(Duration::from_secs(30), "r3 to complete", || {
        d.status("shop")["phase"] == "complete"
    });
    assert_eq!(get(port, "/").unwrap().1, "hello from v3\n");
    wait_for(Duration::from_secs(20), "old replicas to be gone", || {
        d.status("shop")["services"][0]["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["revision"] == 3)
    });
}
