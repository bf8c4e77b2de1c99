//! Starting replicas: exit statuses are reported once, the environment is clean, secrets are
//! installed as read-only files, and a failed start leaves nothing behind.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;

use tokio::sync::mpsc;
use zenith_runtime::{ExitStatus, INHERITED_ENV, ProcessRuntime, Runtime, RuntimeError};

use crate::common::{Fixture, PATIENCE, next_exit, read};

#[tokio::test]
async fn exit_code_and_signal_are_reported() {
    let fx = Fixture::new();
    let rt = ProcessRuntime::new();
    let (tx, mut exits) = mpsc::unbounded_channel();

    let record = rt.start(&fx.spec("code", "exit 7"), tx.clone()).await.unwrap();
    assert!(record.pid > 0);
    assert_eq!(record.id, "code");
    assert_eq!(record.log_path, fx.path().join("run/code/output.log"));
    let exit = next_exit(&mut exits).await;
    assert_eq!((exit.id.as_str(), exit.status), ("code", ExitStatus::Code(7)));

    rt.start(&fx.spec("signal", "kill -KILL $$"), tx).await.unwrap();
    let exit = next_exit(&mut exits).await;
    assert_eq!((exit.id.as_str(), exit.status), ("signal", ExitStatus::Signal(9)));

    // Exactly one exit each: nothing else arrives once every sender is gone.
    drop(rt);
    let rest = tokio::time::timeout(PATIENCE, exits.recv()).await;
    assert!(matches!(rest, Ok(None)), "{rest:?}");
}

#[tokio::test]
async fn environment_is_clean() {
    let fx = Fixture::new();
    // Set by cargo for every test process; a replica must not see it.
    let leaked = "CARGO_MANIFEST_DIR";
    assert!(
        std::env::var_os(leaked).is_some(),
        "the test runner should set {leaked}"
    );

    let mut spec = fx.spec("env", "env");
    spec.env.insert("PORT".into(), "4321".into());
    let rt = ProcessRuntime::new();
    let (tx, mut exits) = mpsc::unbounded_channel();
    let record = rt.start(&spec, tx).await.unwrap();
    assert_eq!(next_exit(&mut exits).await.status, ExitStatus::Code(0));

    let log = read(&record.log_path);
    let vars: BTreeSet<&str> = log.lines().filter_map(|l| l.split_once('=')).map(|(k, _)| k).collect();
    assert!(log.lines().any(|l| l == "PORT=4321"), "{log}");
    assert!(log.lines().any(|l| l == "ZENITH_REPLICA_ID=env"), "{log}");
    let secrets_dir = fx.path().join("run/env/secrets");
    assert!(
        log.contains(&format!("ZENITH_SECRETS_DIR={}", secrets_dir.display())),
        "{log}"
    );
    assert!(!vars.contains(leaked), "{log}");
    // The shell itself may add a few of its own.
    let allowed: BTreeSet<&str> = INHERITED_ENV
        .iter()
        .copied()
        .chain([
            "PORT",
            "ZENITH_REPLICA_ID",
            "ZENITH_SECRETS_DIR",
            "PWD",
            "OLDPWD",
            "SHLVL",
            "_",
        ])
        .collect();
    let unexpected: Vec<_> = vars.difference(&allowed).collect();
    assert!(unexpected.is_empty(), "unexpected variables {unexpected:?} in\n{log}");
}

#[tokio::test]
async fn secrets_are_read_only_files() {
    let fx = Fixture::new();
    let source = fx.path().join("db-password");
    fs_err::write(&source, "hunter2").unwrap();
    let mut spec = fx.spec("sec", r#"cat "$ZENITH_SECRETS_DIR/db"; echo; pwd"#);
    spec.secrets.insert("db".into(), source);
    let rt = ProcessRuntime::new();
    let (tx, mut exits) = mpsc::unbounded_channel();
    let record = rt.start(&spec, tx).await.unwrap();
    assert_eq!(next_exit(&mut exits).await.status, ExitStatus::Code(0));

    let dir = fx.path().join("run/sec/secrets");
    let mode = |p: &std::path::Path| fs_err::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("db")), 0o400);
    assert_eq!(read(&dir.join("db")), "hunter2");
    let log = read(&record.log_path);
    assert_eq!(log, format!("hunter2\n{}\n", fx.work().display()));
}

#[tokio::test]
async fn a_missing_secret_starts_nothing() {
    let fx = Fixture::new();
    let missing = fx.path().join("nope");
    let mut spec = fx.spec("miss", "touch started");
    spec.secrets.insert("api-token".into(), missing.clone());
    let rt = ProcessRuntime::new();
    let (tx, _exits) = mpsc::unbounded_channel();

    let err = rt.start(&spec, tx).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(&err, RuntimeError::Secret { name, path, .. } if name == "api-token" && *path == missing));
    assert!(message.contains("miss") && message.contains("api-token"), "{message}");
    assert!(message.contains(&missing.display().to_string()), "{message}");
    assert!(!fx.work().join("started").exists());
    assert!(!fx.path().join("run/miss/secrets").exists());
}

#[tokio::test]
async fn a_missing_program_is_a_spawn_error() {
    let fx = Fixture::new();
    let mut spec = fx.spec("ghost", "");
    spec.command = vec!["/nonexistent/program".into()];
    let (tx, _exits) = mpsc::unbounded_channel();
    let err = ProcessRuntime::new().start(&spec, tx).await.unwrap_err();
    assert!(
        matches!(err, RuntimeError::Spawn { ref id, .. } if id == "ghost"),
        "{err}"
    );
}
