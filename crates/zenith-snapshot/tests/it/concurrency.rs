//! Two creates at once both succeed; prune cannot run while a create holds its lock; a lock
//! left by a dead process does not block.

use std::time::Duration;

use zenith_snapshot::lock::Lock;
use zenith_snapshot::progress::NoProgress;
use zenith_snapshot::prune::{PruneOptions, prune};
use zenith_snapshot::verify::{ReadData, verify};
use zenith_snapshot::{Error, Repository};

use crate::common::*;

#[test]
fn two_creates_at_once_both_succeed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    init_repo(&dir);
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for (d, seed) in [(&a, 1), (&b, 2)] {
        std::fs::create_dir(d).unwrap();
        for i in 0..20 {
            std::fs::write(d.join(format!("f{i}")), noise(150_000, seed * 100 + i)).unwrap();
        }
        // Shared content between the two.
        std::fs::write(d.join("common"), noise(500_000, 99)).unwrap();
    }
    let handles: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|p| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let repo = Repository::open(&dir, &password()).unwrap();
                snapshot(&repo, &[&p]).snapshot
            })
        })
        .collect();
    let snaps: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let repo = Repository::open(&dir, &password()).unwrap();
    assert_eq!(repo.snapshots().unwrap().len(), 2);
    let report = verify(&repo, &[], ReadData::All, &NoProgress).unwrap();
    assert!(report.ok(), "{:?}", report.errors);
    for (s, src) in snaps.iter().zip([&a, &b]) {
        let out = tmp.path().join(format!("out-{}", s.id.short()));
        restore_to(&repo, s, &out);
        assert_same_tree(src, &out);
    }
}

#[test]
fn prune_waits_for_running_creates_and_names_the_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = init_repo(&tmp.path().join("repo"));
    // A create in progress holds a shared lock.
    let held = Lock::acquire(repo.backend(), false, "snapshot create", Duration::ZERO).unwrap();
    let err = prune(&repo, &PruneOptions::default(), &NoProgress).unwrap_err();
    assert!(matches!(err, Error::Locked(_)));
    let msg = err.to_string();
    assert!(msg.contains(&format!("pid {}", std::process::id())), "{msg}");
    assert!(msg.contains("snapshot create"), "{msg}");
    drop(held);
    prune(&repo, &PruneOptions::default(), &NoProgress).unwrap();
}

#[test]
fn a_lock_of_a_dead_process_does_not_block() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let repo = init_repo(&dir);
    // A child process takes an exclusive lock and is killed before it can release it.
    let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let pid = child.id();
    let now = jiff::Timestamp::now();
    let lock = serde_json::json!({
        "exclusive": true, "host": zenith_snapshot::snapshot::hostname(), "username": "ghost",
        "pid": pid, "created": now, "refreshed": now, "operation": "snapshot prune"
    });
    std::fs::write(dir.join("locks").join("a".repeat(64)), lock.to_string()).unwrap();
    let err = Lock::acquire(repo.backend(), false, "snapshot create", Duration::ZERO)
        .err()
        .unwrap();
    assert!(err.to_string().contains(&format!("pid {pid}")), "{err}");
    child.kill().unwrap();
    child.wait().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    snapshot(&repo, &[&src]);
}
