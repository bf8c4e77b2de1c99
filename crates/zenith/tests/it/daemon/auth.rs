//! Tokens and roles: 401 without a valid token, 403 outside the role, and every mutating call
//! in the audit log. Bad input changes nothing.

use super::{Daemon, demo_spec, free_port};

#[test]
fn roles_are_enforced_and_audited() {
    let d = Daemon::start();
    let token_file = d.data().join("admin.token");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&token_file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    let viewer = d
        .ok(&["token", "create", "watcher", "--role", "viewer"])
        .trim()
        .to_string();
    assert!(viewer.starts_with("zt_"));
    let spec = d.spec("app.toml", &demo_spec("guarded", free_port(), "v1", 1, ""));
    let as_viewer = d
        .cmd()
        .args(["deploy", "-f", spec.to_str().unwrap()])
        .env("ZENITH_TOKEN", &viewer)
        .output()
        .unwrap();
    assert_eq!(as_viewer.status.code(), Some(21));
    assert!(String::from_utf8_lossy(&as_viewer.stderr).contains("role viewer"));
    let wrong = d.cmd().args(["apps"]).env("ZENITH_TOKEN", "zt_0000").output().unwrap();
    assert_eq!(wrong.status.code(), Some(21));
    // The viewer may read.
    let apps = d.cmd().args(["apps"]).env("ZENITH_TOKEN", &viewer).output().unwrap();
    assert!(apps.status.success());

    let audit = d.ok(&["audit"]);
    assert!(
        audit.contains("watcher (viewer)") && audit.contains("denied"),
        "{audit}"
    );
    assert!(audit.contains("token.create"), "{audit}");
    assert!(!audit.contains(&viewer), "the audit log must not hold secrets");
}

#[test]
fn bad_specs_and_taken_ports_change_nothing() {
    let d = Daemon::start();
    let bad = d.spec("bad.toml", "[app]\nname = \"x\"\n[services.web]\nreplicas = \"two\"\n");
    let out = d.run(&["deploy", "-f", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("replicas"));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let spec = d.spec("app.toml", &demo_spec("clash", port, "v1", 1, ""));
    let out = d.run(&["deploy", "-f", spec.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("port {port}")));
    let apps = d.ok(&["apps", "--output-format", "json"]);
    assert_eq!(apps.trim(), "[]");
}
