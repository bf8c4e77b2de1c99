//! A replica's output log: written by the replica itself, rotated by copy-truncate without a
//! hole, and followed across the rotation.

use std::time::Duration;

use tokio::sync::mpsc;
use zenith_runtime::{ExitStatus, LogFollower, ProcessRuntime, Runtime, read_log_tail, rotate_log};

use crate::common::{Fixture, PATIENCE, next_exit, read, wait_until};

#[tokio::test]
async fn output_survives_rotation() {
    let fx = Fixture::new();
    let script = "echo before; echo oops >&2; while [ ! -e go ]; do sleep 0.05; done; echo after";
    let rt = ProcessRuntime::new();
    let (tx, mut exits) = mpsc::unbounded_channel();
    let record = rt.start(&fx.spec("rot", script), tx).await.unwrap();
    let log = record.log_path.clone();
    wait_until("the first lines", || read(&log) == "before\noops\n").await;
    let mut follower = LogFollower::from_start(&log).unwrap();
    assert_eq!(follower.poll_lines().unwrap(), ["before", "oops"]);

    assert!(rotate_log(&log, 1, 3).unwrap());
    assert_eq!(read(&fx.path().join("run/rot/output.log.1")), "before\noops\n");
    fs_err::write(fx.work().join("go"), "").unwrap();
    assert_eq!(next_exit(&mut exits).await.status, ExitStatus::Code(0));

    // O_APPEND: the write after the truncate lands at offset 0, not after a hole.
    assert_eq!(read(&log), "after\n");
    assert_eq!(read_log_tail(&log, 10).unwrap(), ["after"]);
    assert_eq!(follower.poll_lines().unwrap(), ["after"]);
}

#[tokio::test]
async fn follow_a_running_replica_across_rotation() {
    let fx = Fixture::new();
    let script = "i=0; while [ ! -e stop ]; do echo tick $i; i=$((i+1)); sleep 0.05; done";
    let rt = ProcessRuntime::new();
    let (tx, mut exits) = mpsc::unbounded_channel();
    let record = rt.start(&fx.spec("ticker", script), tx).await.unwrap();
    let log = record.log_path.clone();
    wait_until("the first tick", || read(&log).contains('\n')).await;

    let mut follower = LogFollower::from_end(&log).unwrap();
    let lines = next_lines(&mut follower).await;
    assert!(lines.iter().all(|l| l.starts_with("tick ")), "{lines:?}");
    assert!(rotate_log(&log, 1, 1).unwrap());
    let lines = next_lines(&mut follower).await;
    assert!(lines.iter().all(|l| l.starts_with("tick ")), "{lines:?}");

    fs_err::write(fx.work().join("stop"), "").unwrap();
    assert_eq!(next_exit(&mut exits).await.status, ExitStatus::Code(0));
}

async fn next_lines(follower: &mut LogFollower) -> Vec<String> {
    let lines = follower.next_lines(Duration::from_millis(20));
    tokio::time::timeout(PATIENCE, lines).await.unwrap().unwrap()
}
