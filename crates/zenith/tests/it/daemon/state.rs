//! State that survives change: before-deploy snapshots and `rollback --with-state` under a
//! writing load, a daemon killed in the middle of one, on-stop snapshots (SIGTERM, and one
//! that runs out of time), restore on start, restore drills and snapshot health.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{Daemon, demo_spec, free_port, get, post, wait_for};

/// Every regular file under `dir` (dot-files, the app's in-flight temporaries, left out):
/// relative path → contents.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        // A directory being swapped while it is read gives a partial tree; callers that
        // poll read it again.
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            for (k, v) in tree(&e.path()) {
                out.insert(format!("{name}/{k}"), v);
            }
        } else if let Ok(bytes) = std::fs::read(e.path()) {
            out.insert(name, bytes);
        }
    }
    out
}

/// A spec whose service keeps its state in `./data` with the given `[state]` keys.
fn stateful(app: &str, port: u16, version: &str, hooks: &str, tail: &str) -> String {
    let extra = format!("state_dirs = [\"./state\"]\nstate = {{ {hooks} }}");
    format!("{}\n{tail}", demo_spec(app, port, version, 1, &extra))
}

/// The daemon's repository, for the `zenith snapshot` commands.
fn repo_cmd(d: &Daemon, args: &[&str]) -> String {
    let out = d
        .cmd()
        .env("ZENITH_REPO", d.data().join("snapshots"))
        .env("ZENITH_PASSWORD_FILE", d.data().join("snapshots.password"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Restores snapshot `id` of the daemon's repository into a fresh directory.
fn restore_elsewhere(d: &Daemon, id: &str) -> BTreeMap<String, Vec<u8>> {
    let target = d.path(&format!("check-{id}"));
    repo_cmd(
        d,
        &[
            "snapshot",
            "restore",
            id,
            "--target",
            target.to_str().unwrap(),
            "--no-backup",
        ],
    );
    tree(&target)
}

/// Writes `w-N` files through the router until stopped: the keys answered 200, with the
/// version that answered.
fn writer(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<(String, String)>> {
    std::thread::spawn(move || {
        let mut acked = Vec::new();
        let mut n = 0u32;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let key = format!("w-{n:05}");
            if let Ok((200, body)) = post(port, &format!("/write/{key}"), &format!("value {n}")) {
                let by = body.trim().rsplit(' ').next().unwrap_or("").to_string();
                acked.push((key, by));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        acked
    })
}

fn deploy(d: &Daemon, spec: &Path) -> serde_json::Value {
    let out = d.ok(&["deploy", "-f", spec.to_str().unwrap(), "--output-format", "json"]);
    serde_json::from_str(&out).unwrap()
}

#[test]
fn rollback_with_state_brings_back_the_data_the_target_was_deployed_over_under_load() {
    let d = Daemon::start();
    let port = free_port();
    let hooks = "snapshot_before_deploy = true";
    let spec = d.spec("zenith.toml", &stateful("shop", port, "v1", hooks, ""));
    deploy(&d, &spec);
    let stop = Arc::new(AtomicBool::new(false));
    let load = writer(port, stop.clone());
    std::thread::sleep(Duration::from_millis(600));
    std::fs::write(&spec, stateful("shop", port, "v2", hooks, "")).unwrap();
    deploy(&d, &spec);
    std::thread::sleep(Duration::from_millis(600));
    std::fs::write(&spec, stateful("shop", port, "v3", hooks, "")).unwrap();
    deploy(&d, &spec);
    std::thread::sleep(Duration::from_millis(600));

    // r2 recorded the set taken before it rolled out.
    let history = d.ok(&["rollout", "history", "shop", "--output-format", "json"]);
    let revs: serde_json::Value = serde_json::from_str(&history).unwrap();
    assert!(revs.to_string().contains("shop-r2-"), "{history}");

    let out = d.ok(&["rollback", "shop", "2", "--with-state", "--output-format", "json"]);
    stop.store(true, Ordering::Relaxed);
    let acked = load.join().unwrap();
    let resp: serde_json::Value = serde_json::from_str(&out).unwrap();
    let op = &resp["state_op"];
    assert!(op["error"].is_null(), "{out}");
    let set = op["set"].as_str().unwrap();
    assert!(set.starts_with("shop-r2-"), "{out}");
    let names: Vec<&str> = op["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "stop writers",
            "pre-restore snapshot",
            "restore",
            "start",
            "health check"
        ]
    );

    // The live directory is, byte for byte, the snapshot r2 recorded (what the app writes
    // after the rollback added on top: only files answered by the restored version).
    let restored_id = op["restores"][0]["snapshot"].as_str().unwrap();
    let r2_state = restore_elsewhere(&d, &restored_id[..12]);
    assert!(r2_state.len() > 20, "the load wrote before r2: {}", r2_state.len());
    let live = tree(&d.path("state"));
    let after: Vec<&String> = acked.iter().filter(|(_, by)| by == "v2").map(|(k, _)| k).collect();
    for (k, v) in &r2_state {
        assert_eq!(live.get(k), Some(v), "{k} differs from r2's state");
    }
    for k in live.keys().filter(|k| !r2_state.contains_key(*k)) {
        assert!(
            after.contains(&k),
            "{k} is in the live directory but neither in r2's state nor written after"
        );
    }
    // Nothing written by v3 survived in the live directory…
    let by_v3: Vec<&String> = acked.iter().filter(|(_, by)| by == "v3").map(|(k, _)| k).collect();
    assert!(!by_v3.is_empty());
    assert!(by_v3.iter().all(|k| !live.contains_key(*k)));
    // …and all of it is in the pre-restore snapshot, which holds the state just before.
    let backup = op["backups"][0][1].as_str().unwrap();
    let before = restore_elsewhere(&d, &backup[..12]);
    for k in by_v3 {
        assert!(
            before.contains_key(k),
            "acknowledged write {k} is not in the pre-restore snapshot"
        );
    }
    assert!(r2_state.keys().all(|k| before.contains_key(k)));

    let audit = d.ok(&["audit", "--app", "shop"]);
    assert!(audit.contains("with state"), "{audit}");
    // A plain rollback leaves data alone and says so.
    let out = d.run(&["rollback", "shop", "3"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("state directories are left as they are"));
    assert!(d.ok(&["audit", "--app", "shop"]).contains("code only"));
}

#[test]
fn rollback_with_state_needs_a_recorded_snapshot() {
    let d = Daemon::start();
    let port = free_port();
    let spec = d.spec(
        "zenith.toml",
        &stateful("plain", port, "v1", "snapshot_on_stop = false", ""),
    );
    deploy(&d, &spec);
    std::fs::write(&spec, stateful("plain", port, "v2", "snapshot_on_stop = false", "")).unwrap();
    deploy(&d, &spec);
    let out = d.run(&["rollback", "plain", "1", "--with-state"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no state snapshot recorded"), "{err}");
    assert!(err.contains("zenith recover plain"), "{err}");
}

#[test]
fn a_daemon_killed_during_a_rollback_with_state_finishes_it_and_loses_nothing() {
    let mut d = Daemon::start();
    let port = free_port();
    let hooks = "snapshot_before_deploy = true";
    // Enough state that each phase takes a while: 800 files of 64 KiB.
    let data = d.path("state");
    std::fs::create_dir_all(&data).unwrap();
    for i in 0..800 {
        let bytes: Vec<u8> = (0..65536u32).map(|b| (b.wrapping_mul(i + 7) >> 3) as u8).collect();
        std::fs::write(data.join(format!("f-{i:03}")), bytes).unwrap();
    }
    let spec = d.spec("zenith.toml", &stateful("db", port, "v1", hooks, ""));
    deploy(&d, &spec);
    std::fs::write(&spec, stateful("db", port, "v2", hooks, "")).unwrap();
    deploy(&d, &spec);
    let target = tree(&data); // r2 was deployed over this
    // When to kill: soon after the request (stopping, pre-restore snapshot); once the restore
    // is being built beside the directory; once it has been swapped in (starting).
    let staging = |d: &Path| {
        std::fs::read_dir(d.parent().unwrap())
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".state.zenith-restore-"))
    };
    for (round, when) in ["soon", "restoring", "restored"].into_iter().enumerate() {
        // Change the state so that "old" and "restored" differ.
        for i in 0..50 {
            std::fs::write(data.join(format!("new-{round}-{i}")), format!("round {round}")).unwrap();
        }
        std::fs::write(data.join("f-000"), format!("changed in round {round}")).unwrap();
        let old = tree(&data);
        let mut cli = d.cmd().args(["rollback", "db", "2", "--with-state"]).spawn().unwrap();
        match when {
            "soon" => std::thread::sleep(Duration::from_millis(30)),
            // Polled tightly: on a fast machine the restore is over in a blink. Should it end
            // unseen, the kill lands after it, which the checks below cover as well.
            "restoring" => {
                let until = std::time::Instant::now() + Duration::from_secs(10);
                while !staging(&data) && std::time::Instant::now() < until {
                    // f-000 is rewritten each round: back to r2's bytes means restored.
                    if std::fs::read(data.join("f-000")).ok().as_ref() == target.get("f-000") {
                        eprintln!("round {round}: the restore ended before it was seen");
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            _ => wait_for(Duration::from_secs(30), "the restore to be swapped in", || {
                tree(&data) == target
            }),
        }
        let mut child = d.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        let _ = cli.wait();
        let now = tree(&data);
        d = d.spawn();
        // At any instant: the old state, or the restored one, never a mix.
        assert!(
            now == old || now == target,
            "round {round}: a mix of old and restored state"
        );
        eprintln!(
            "round {round}: killed when {when}, found the {} state",
            if now == old { "old" } else { "restored" }
        );
        // The restarted daemon carries the operation to its end. A kill that came before the
        // daemon took the request leaves nothing to finish: ask again.
        std::thread::sleep(Duration::from_secs(3));
        if tree(&data) == old {
            eprintln!("round {round}: the operation had not begun; asking again");
            let _ = d.run(&["rollback", "db", "2", "--with-state"]);
        }
        wait_for(Duration::from_secs(60), "the rollback to finish", || {
            tree(&data) == target && d.status("db")["phase"] == "complete"
        });
        // The state from before, when the restore had begun, is in a pre-restore snapshot.
        let list = repo_cmd(
            &d,
            &["snapshot", "list", "--tag", "pre-restore", "--output-format", "json"],
        );
        let snaps: Vec<serde_json::Value> = serde_json::from_str(&list).unwrap();
        let newest = snaps
            .iter()
            .max_by_key(|s| s["time"].as_str().unwrap().to_string())
            .unwrap();
        let id = newest["id"].as_str().unwrap();
        if now == target {
            assert_eq!(restore_elsewhere(&d, &id[..12]), old, "round {round}");
        }
        // The app is healthy a moment before the daemon drops the finished operation's
        // record; the next round's request must not meet it.
        std::thread::sleep(Duration::from_secs(1));
    }
    let verify = repo_cmd(&d, &["snapshot", "verify", "--read-data"]);
    assert!(verify.contains("no errors"), "{verify}");
}

#[test]
fn on_stop_snapshots_run_on_sigterm_and_restore_on_start_fills_an_empty_directory() {
    let mut d = Daemon::start();
    let port = free_port();
    let hooks = "snapshot_on_stop = true, restore_on_start = \"latest\"";
    let spec = d.spec("zenith.toml", &stateful("notes", port, "v1", hooks, ""));
    deploy(&d, &spec);
    assert_eq!(post(port, "/write/hello", "world").unwrap().0, 200);
    assert!(d.terminate().success());
    let list = repo_cmd(&d, &["snapshot", "list", "--tag", "on-stop", "--output-format", "json"]);
    assert_eq!(
        serde_json::from_str::<Vec<serde_json::Value>>(&list).unwrap().len(),
        1,
        "{list}"
    );

    // The state directory is lost; the next start fills it from the on-stop snapshot.
    std::fs::remove_dir_all(d.path("state")).unwrap();
    let mut d = d.spawn();
    wait_for(Duration::from_secs(30), "the replica to serve", || {
        matches!(get(port, "/read/hello"), Ok((200, _)))
    });
    assert_eq!(get(port, "/read/hello").unwrap().1, "world");
    assert_eq!(std::fs::read(d.path("state/hello")).unwrap(), b"world");
    d.terminate();
}

#[test]
fn an_on_stop_snapshot_out_of_time_is_reported_and_the_stop_completes() {
    let d = Daemon::start();
    let port = free_port();
    let data = d.path("state");
    std::fs::create_dir_all(&data).unwrap();
    for i in 0..300 {
        std::fs::write(data.join(format!("f-{i}")), vec![i as u8; 100_000]).unwrap();
    }
    let hooks = "snapshot_on_stop = true, on_stop_timeout = \"1ms\"";
    let spec = d.spec("zenith.toml", &stateful("slow", port, "v1", hooks, ""));
    deploy(&d, &spec);
    std::fs::write(&spec, stateful("slow", port, "v2", hooks, "")).unwrap();
    let resp = deploy(&d, &spec);
    assert_eq!(resp["result"], "complete", "{resp}");
    wait_for(Duration::from_secs(20), "the failure in the audit log", || {
        d.ok(&["audit", "--app", "slow"]).contains("hook on-stop")
    });
    let audit = d.ok(&["audit", "--app", "slow"]);
    assert!(audit.contains("on_stop_timeout"), "{audit}");
    let metrics = super::api_get(&d, "/metrics");
    assert!(
        metrics.contains("zenith_snapshot_hook_failures_total{app=\"slow\",service=\"web\",hook=\"on-stop\"} 1"),
        "{metrics}"
    );
}

#[test]
fn a_drill_restores_on_the_side_and_never_touches_live_state_or_port() {
    let d = Daemon::start();
    let port = free_port();
    let hooks = "snapshot_before_deploy = true";
    let tail = "[health]\nage_warning = \"1h\"\nage_critical = \"2h\"\n";
    let v1 = stateful("wiki", port, "v1", hooks, tail).replace(
        "DEMO_VERSION = \"v1\"",
        "DEMO_VERSION = \"v1\", DEMO_REQUIRE_STATE = \"page\"",
    );
    // The app is healthy only with its page in place.
    std::fs::create_dir_all(d.path("state")).unwrap();
    std::fs::write(d.path("state/page"), "first").unwrap();
    let spec = d.spec("zenith.toml", &v1);
    deploy(&d, &spec);
    std::fs::write(&spec, v1.replace("\"v1\"", "\"v2\"")).unwrap();
    deploy(&d, &spec); // records the set with the page
    let pid = d.status("wiki")["services"][0]["replicas"][0]["pid"].clone();
    let live_before = tree(&d.path("state"));
    let mtime = std::fs::metadata(d.path("state/page")).unwrap().modified().unwrap();

    let out = d.ok(&["recover", "wiki", "--drill", "--output-format", "json"]);
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    let drill = &r["drill"];
    assert_eq!(drill["ok"], true, "{out}");
    let detail = drill["steps"][1]["detail"].as_str().unwrap();
    assert!(detail.contains("healthy on scratch ports"), "{detail}");
    assert!(
        !detail.contains(&port.to_string()),
        "the drill used the live port: {detail}"
    );
    assert_eq!(tree(&d.path("state")), live_before);
    assert_eq!(
        std::fs::metadata(d.path("state/page")).unwrap().modified().unwrap(),
        mtime
    );
    assert_eq!(d.status("wiki")["services"][0]["replicas"][0]["pid"], pid);
    assert!(
        !d.data().join("drills").read_dir().unwrap().any(|_| true),
        "scratch left behind"
    );

    // A set without the page cannot come up: the drill fails, and health turns critical.
    std::fs::remove_file(d.path("state/page")).unwrap();
    std::fs::write(&spec, v1.replace("\"v1\"", "\"v3\"")).unwrap();
    let _ = d.run(&["deploy", "-f", spec.to_str().unwrap(), "--no-wait"]);
    let out = d.run(&["recover", "wiki", "--drill"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let health = d.run(&["snapshot", "health"]);
    assert_eq!(health.status.code(), Some(1));
    let text = String::from_utf8_lossy(&health.stdout);
    assert!(text.contains("drill CRITICAL"), "{text}");
    let metrics = super::api_get(&d, "/metrics");
    assert!(metrics.contains("zenith_drill_ok{app=\"wiki\"} 0"), "{metrics}");
    assert!(
        metrics.contains("zenith_snapshot_age_seconds{app=\"wiki\",type=\"state\"}"),
        "{metrics}"
    );
}

#[test]
fn recover_restores_a_chosen_set_and_refuses_what_is_not_the_apps_state() {
    let d = Daemon::start();
    let port = free_port();
    let hooks = "snapshot_before_deploy = true";
    std::fs::create_dir_all(d.path("state")).unwrap();
    std::fs::write(d.path("state/a"), "one").unwrap();
    let spec = d.spec("zenith.toml", &stateful("crm", port, "v1", hooks, ""));
    deploy(&d, &spec);
    std::fs::write(&spec, stateful("crm", port, "v2", hooks, "")).unwrap();
    let r2 = deploy(&d, &spec);
    assert_eq!(r2["result"], "complete");
    post(port, "/write/b", "two").unwrap();
    let dry = d.ok(&["recover", "crm", "--snapshot", "latest", "--dry-run"]);
    assert!(dry.contains("dry run"), "{dry}");
    assert!(d.path("state/b").exists());
    let out = d.ok(&["recover", "crm", "--snapshot", "latest", "--validate"]);
    assert!(out.contains("re-read and checked"), "{out}");
    assert!(
        !d.path("state/b").exists(),
        "recover brought back the set from before b"
    );
    assert_eq!(std::fs::read(d.path("state/a")).unwrap(), b"one");
    // A snapshot of some other directory is not this app's state.
    let other = d.path("elsewhere");
    std::fs::create_dir_all(&other).unwrap();
    repo_cmd(
        &d,
        &[
            "snapshot",
            "create",
            other.to_str().unwrap(),
            "--tag",
            "app=crm",
            "--tag",
            "service=web",
            "--tag",
            "set=stray",
        ],
    );
    let out = d.run(&["recover", "crm", "--snapshot", "stray"]);
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a state directory"), "{err}");
    let out = d.run(&["recover", "crm", "--snapshot", "nonesuch"]);
    assert_ne!(out.status.code(), Some(0));
}

#[test]
fn a_snapshot_that_cannot_be_restored_leaves_the_state_from_before_in_place() {
    let d = Daemon::start();
    let port = free_port();
    let hooks = "snapshot_before_deploy = true";
    let spec = d.spec("zenith.toml", &stateful("ledger", port, "v1", hooks, ""));
    deploy(&d, &spec);
    std::fs::create_dir_all(d.path("state")).unwrap();
    let unique: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(d.path("state/a"), &unique).unwrap();
    std::fs::write(&spec, stateful("ledger", port, "v2", hooks, "")).unwrap();
    deploy(&d, &spec); // r2 records a set holding `a`
    let packs_of_r2: Vec<_> = walk(&d.data().join("snapshots/data"));
    std::fs::remove_file(d.path("state/a")).unwrap();
    std::fs::write(d.path("state/b"), "newer data").unwrap();
    let before = tree(&d.path("state"));
    // Damage every pack written up to r2: its state cannot come back.
    for p in &packs_of_r2 {
        let mut bytes = std::fs::read(p).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x20;
        std::fs::write(p, bytes).unwrap();
    }
    let out = d.run(&["rollback", "ledger", "2", "--with-state"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the state from before is back in place"), "{err}");
    assert_eq!(tree(&d.path("state")), before);
    wait_for(Duration::from_secs(30), "the app to serve again", || {
        matches!(get(port, "/read/b"), Ok((200, _)))
    });
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}
