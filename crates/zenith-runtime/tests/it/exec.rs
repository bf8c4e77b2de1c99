//! Commands run in a replica's environment: combined output, exit status, and a timeout that
//! kills the command's whole process group.

use std::time::Duration;

use zenith_runtime::{ExitStatus, ProcessRuntime, Runtime, RuntimeError};

use crate::common::{Fixture, PATIENCE, pid_alive, pid_from, sh, wait_until};

#[tokio::test]
async fn exec_reports_status_and_combined_output() {
    let fx = Fixture::new();
    let mut spec = fx.spec("web-1", "true");
    spec.env.insert("PORT".into(), "8080".into());
    let command = sh(r#"echo "out $PORT $ZENITH_REPLICA_ID"; echo err >&2; pwd; exit 3"#);
    let out = ProcessRuntime::new().exec(&spec, &command, PATIENCE).await.unwrap();
    assert_eq!(out.status, ExitStatus::Code(3));
    assert_eq!(out.output, format!("out 8080 web-1\nerr\n{}\n", fx.work().display()));
}

#[tokio::test]
async fn exec_keeps_only_the_tail_of_long_output() {
    let fx = Fixture::new();
    let spec = fx.spec("chatty", "true");
    let command = sh("i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done");
    let out = ProcessRuntime::new().exec(&spec, &command, PATIENCE).await.unwrap();
    assert!(out.status.success());
    assert!(out.output.len() <= 4096);
    assert!(out.output.ends_with("line 1999\n"), "{}", out.output);
}

#[tokio::test]
async fn exec_timeout_kills_the_group() {
    let fx = Fixture::new();
    let spec = fx.spec("slow", "true");
    let command = sh("echo started; sleep 1000 & echo $! > bg.pid; wait");
    let err = ProcessRuntime::new()
        .exec(&spec, &command, Duration::from_millis(500))
        .await
        .unwrap_err();
    match &err {
        RuntimeError::ExecTimeout { id, output, .. } => {
            assert_eq!(id, "slow");
            assert_eq!(output, "started\n");
        }
        other => panic!("expected a timeout, got {other}"),
    }
    assert!(err.to_string().contains("slow"), "{err}");
    let bg = pid_from(&fx, "bg.pid").await;
    wait_until("the background sleep to be killed", || !pid_alive(bg)).await;
}

#[tokio::test]
async fn exec_of_a_missing_program_is_an_error() {
    let fx = Fixture::new();
    let spec = fx.spec("x", "true");
    let err = ProcessRuntime::new()
        .exec(&spec, &["/nonexistent/probe".to_string()], PATIENCE)
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::Exec { .. }), "{err}");
}
