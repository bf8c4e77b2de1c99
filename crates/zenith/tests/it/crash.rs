//! kill -9 of `snapshot create` at many instants never breaks the repository: it verifies
//! clean after each kill, and the next create succeeds and reuses what was stored.

use std::time::{Duration, Instant};

use crate::util::*;

#[test]
fn kill_9_during_create_never_breaks_the_repository() {
    let env = Env::empty();
    // Small packs, so even an early kill leaves finished packs behind.
    env.ok(&["repo", "init", "--pack-size", "1"]);
    for i in 0..12 {
        env.write(&format!("data/blob{i}"), &noise(4 << 20, i));
        let text: String = (0..60_000).map(|l| format!("{i} log line {l}\n")).collect();
        env.write(&format!("data/text{i}.log"), text.as_bytes());
    }
    let total: u64 = contents(&env.path("data")).iter().map(|(_, d)| d.len() as u64).sum();

    // How long an uninterrupted create takes, in a scratch repository.
    let scratch = env.path("scratch");
    let mut c = env.cmd();
    c.env("ZENITH_REPO", &scratch)
        .args(["repo", "init", "--pack-size", "1"]);
    assert!(c.status().unwrap().success());
    let start = Instant::now();
    let mut c = env.cmd();
    c.env("ZENITH_REPO", &scratch)
        .args(["snapshot", "create", "data", "-q"]);
    assert!(c.status().unwrap().success());
    let full = start.elapsed();

    let mut killed = 0;
    for tenth in 1..=9 {
        let mut child = env.cmd().args(["snapshot", "create", "data", "-q"]).spawn().unwrap();
        std::thread::sleep(full * tenth / 10);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();
        let out = env.run(&["snapshot", "verify", "--read-data"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "after a kill at {}/10 of a create:\n{}\n{}",
            tenth,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // The killed process's lock blocks nobody.
        env.ok(&["snapshot", "list"]);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(killed >= 3, "the create was too quick to interrupt ({killed} kills)");
    let summary = env.json(&["snapshot", "create", "data"]);
    let added = summary["summary"]["bytes_added"].as_u64().unwrap();
    assert!(
        added < total / 2,
        "the create after the kills stored {added} of {total} bytes again"
    );
    env.ok(&["snapshot", "verify", "--read-data"]);
    env.ok(&["snapshot", "restore", "latest", "--target", "out"]);
    assert_eq!(contents(&env.path("out")), contents(&env.path("data")));
}
