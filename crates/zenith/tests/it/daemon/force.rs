//! The seed's command-line overrides of a canary: `--initial-traffic` and `--check-interval`
//! change the timeline (and are refused where they mean nothing), `--force` switches at once
//! and is audited as forced, and a rollback is never judged by canary analysis again.

use super::canary::{FAST_CANARY, deploy_v1, spec};
use super::{Daemon, free_port, get};

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
