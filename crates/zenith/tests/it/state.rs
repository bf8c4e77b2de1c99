//! `zenith state`, driven by the seed's environment variables as a preStop hook would be.

use crate::util::*;

fn state_cmd(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> std::process::Output {
    let mut c = env.cmd();
    c.env_remove("ZENITH_REPO")
        .env("STATE_DIRECTORY", env.path("state"))
        .args(["state"])
        .args(args);
    for (k, v) in vars {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn save_retain_restore_as_the_seed_does() {
    let env = Env::empty();
    env.write("state/db.json", b"{\"v\": 1}");
    // Disabled: nothing happens, success.
    ok(state_cmd(&env, &["save"], &[("SNAPSHOT_ENABLED", "false")]));
    assert!(!env.path("state.snapshots").exists());
    // The first save creates the repository beside the state directory.
    for v in 1..=3 {
        env.write("state/db.json", format!("{{\"v\": {v}}}").as_bytes());
        ok(state_cmd(&env, &["save"], &[("STATE_SNAPSHOT_RETENTION", "2")]));
        std::thread::sleep(std::time::Duration::from_millis(1100)); // distinct names
    }
    assert!(env.path("state.snapshots/config").exists());
    let list: serde_json::Value =
        serde_json::from_str(&ok(state_cmd(&env, &["list", "--output-format", "json"], &[]))).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "retention keeps 2");
    let oldest = list[0]["name"].as_str().unwrap().to_string();
    assert!(oldest.starts_with("state-"), "{oldest}");
    ok(state_cmd(&env, &["info", &oldest], &[]));

    env.write("state/db.json", b"broken by a bad deploy");
    // Disabled restore does nothing.
    ok(state_cmd(&env, &["restore"], &[("RESTORE_ENABLED", "false")]));
    assert_eq!(
        std::fs::read(env.path("state/db.json")).unwrap(),
        b"broken by a bad deploy"
    );
    ok(state_cmd(&env, &["restore", "latest"], &[]));
    assert_eq!(std::fs::read(env.path("state/db.json")).unwrap(), b"{\"v\": 3}");
    ok(state_cmd(&env, &["restore", &oldest], &[]));
    assert_eq!(std::fs::read(env.path("state/db.json")).unwrap(), b"{\"v\": 2}");
    // The pre-restore safety copies are not state snapshots: latest is still v3.
    ok(state_cmd(&env, &["restore"], &[]));
    assert_eq!(std::fs::read(env.path("state/db.json")).unwrap(), b"{\"v\": 3}");
    ok(state_cmd(&env, &["clean", "1"], &[]));
    let list: serde_json::Value =
        serde_json::from_str(&ok(state_cmd(&env, &["list", "--output-format", "json"], &[]))).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    // The repository is still whole.
    let out = env
        .cmd()
        .env("ZENITH_REPO", env.path("state.snapshots"))
        .args(["snapshot", "verify", "--read-data"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn a_missing_state_directory_is_a_usage_error() {
    let env = Env::empty();
    let out = state_cmd(&env, &["save"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("STATE_DIRECTORY"));
    let out = state_cmd(&env, &["save"], &[("STATE_SNAPSHOT_RETENTION", "zero")]);
    assert_eq!(out.status.code(), Some(2));
}
