//! Stopping and adopting: SIGTERM to the whole group, SIGKILL after the grace period, and a
//! replica started by one runtime instance taken back and stopped by another.

use std::time::Duration;

use tokio::sync::mpsc;
use zenith_runtime::{ExitStatus, ProcessRuntime, Runtime};

use crate::common::{Fixture, PATIENCE, next_exit, pid_alive, pid_from, wait_until};

/// A leader that notes and survives SIGTERM, with a child that ignores it.
const STUBBORN: &str = r#"
trap 'echo term > term.seen' TERM
(trap '' TERM; exec sleep 1000) &
echo $! > child.pid
while :; do sleep 0.1; done
"#;

#[tokio::test]
async fn stop_escalates_to_sigkill_for_the_whole_group() {
    let fx = Fixture::new();
    let rt = ProcessRuntime::new();
    let (tx, mut exits) = mpsc::unbounded_channel();
    let record = rt.start(&fx.spec("stubborn", STUBBORN), tx).await.unwrap();
    let child = pid_from(&fx, "child.pid").await;
    assert!(pid_alive(record.pid) && pid_alive(child));

    rt.stop("stubborn", Duration::from_millis(300)).await.unwrap();
    let exit = next_exit(&mut exits).await;
    assert_eq!(exit.status, ExitStatus::Signal(9));
    assert!(fx.work().join("term.seen").exists(), "SIGTERM came first");
    assert!(!pid_alive(record.pid));
    wait_until("the TERM-ignoring child to die", || !pid_alive(child)).await;

    // Idempotent, and unknown ids are fine.
    rt.stop("stubborn", Duration::from_millis(300)).await.unwrap();
    rt.stop("never-started", Duration::from_millis(300)).await.unwrap();
}

#[tokio::test]
async fn stop_is_sigterm_for_a_cooperative_replica() {
    let fx = Fixture::new();
    let rt = ProcessRuntime::new();
    let (tx, mut exits) = mpsc::unbounded_channel();
    rt.start(&fx.spec("polite", "exec sleep 1000"), tx).await.unwrap();
    rt.stop("polite", PATIENCE).await.unwrap();
    assert_eq!(next_exit(&mut exits).await.status, ExitStatus::Signal(15));
}

#[tokio::test]
async fn a_leader_that_exits_takes_its_group_along() {
    let fx = Fixture::new();
    let rt = ProcessRuntime::new();
    let (tx, mut exits) = mpsc::unbounded_channel();
    let script = "sleep 1000 & echo $! > child.pid; while [ ! -e go ]; do sleep 0.05; done; exit 3";
    rt.start(&fx.spec("leader", script), tx).await.unwrap();
    let child = pid_from(&fx, "child.pid").await;
    fs_err::write(fx.work().join("go"), "").unwrap();
    assert_eq!(next_exit(&mut exits).await.status, ExitStatus::Code(3));
    wait_until("the leftover child to be killed", || !pid_alive(child)).await;
}

#[tokio::test]
async fn adopt_then_stop_from_a_new_runtime() {
    let fx = Fixture::new();
    let (old_tx, mut old_exits) = mpsc::unbounded_channel();
    let old = ProcessRuntime::new();
    let record = old.start(&fx.spec("kept", STUBBORN), old_tx).await.unwrap();
    let child = pid_from(&fx, "child.pid").await;
    // The daemon "dies": its runtime goes, the replica stays.
    drop(old);
    let closed = tokio::time::timeout(PATIENCE, old_exits.recv()).await;
    assert!(
        matches!(closed, Ok(None)),
        "a dropped runtime reports nothing: {closed:?}"
    );
    assert!(pid_alive(record.pid));

    let new = ProcessRuntime::new();
    let (tx, mut exits) = mpsc::unbounded_channel();
    let mut recycled = record.clone();
    recycled.start_time += 1;
    assert!(
        !new.adopt(&recycled, tx.clone()).await.unwrap(),
        "a different start time is another process"
    );
    assert!(new.adopt(&record, tx.clone()).await.unwrap());
    assert!(new.adopt(&record, tx).await.unwrap(), "adopting twice is harmless");

    new.stop("kept", Duration::from_millis(300)).await.unwrap();
    let exit = next_exit(&mut exits).await;
    assert_eq!((exit.id.as_str(), exit.status), ("kept", ExitStatus::Unknown));
    assert!(fx.work().join("term.seen").exists());
    wait_until("the adopted replica to die", || !pid_alive(record.pid)).await;
    wait_until("its TERM-ignoring child to die", || !pid_alive(child)).await;

    // Once gone, the record no longer adopts.
    let (tx, _exits) = mpsc::unbounded_channel();
    assert!(!new.adopt(&record, tx).await.unwrap());
}
