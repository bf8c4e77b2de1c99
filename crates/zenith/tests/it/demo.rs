//! `zenith demo` end to end: the real binary tells the whole story (v2 completes, v3 is caught
//! and rolled back) and leaves nothing behind, neither when it ends nor when Ctrl-C stops it.
//! Each run gets its own `$TMPDIR`, so its processes are found by that path (the daemon's
//! `--data-dir`, the replicas' secrets directory) without mistaking another test's for them.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::daemon::zenith_bin;

/// A full run takes about 25 s on two cores; this leaves room for a loaded machine.
const RUN_LIMIT: Duration = Duration::from_secs(180);

/// `zenith demo ARGS` with `tmp` as its `$TMPDIR`; stderr lines arrive on the channel.
fn spawn(tmp: &Path, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(zenith_bin())
        .arg("demo")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// Waits for the exit within `limit`; on timeout, Ctrl-C (so it still cleans up), then kill.
fn wait(child: &mut Child, limit: Duration, stderr: &mpsc::Receiver<String>, log: &mut Vec<String>) -> Option<i32> {
    let start = Instant::now();
    loop {
        log.extend(stderr.try_iter());
        if let Some(status) = child.try_wait().unwrap() {
            // The reader thread ends with the pipe; take its last lines.
            std::thread::sleep(Duration::from_millis(100));
            log.extend(stderr.try_iter());
            return status.code();
        }
        if start.elapsed() > limit {
            interrupt(child);
            std::thread::sleep(Duration::from_secs(60));
            let _ = child.kill();
            let _ = child.wait();
            panic!("zenith demo still ran after {limit:?}:\n{}", log.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn interrupt(child: &Child) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
}

/// Processes whose command line or environment mentions `marker`.
fn processes_mentioning(marker: &Path) -> Vec<String> {
    let marker = marker.as_os_str().as_encoded_bytes();
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        for file in ["cmdline", "environ"] {
            let bytes = std::fs::read(entry.path().join(file)).unwrap_or_default();
            if bytes.windows(marker.len()).any(|w| w == marker) {
                let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                found.push(format!("{pid}: {}", String::from_utf8_lossy(&cmd).replace('\0', " ")));
                break;
            }
        }
    }
    found
}

#[test]
fn demo_rolls_v2_out_and_v3_back_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, stderr) = spawn(tmp.path(), &["--output-format", "json"]);
    let mut stdout = String::new();
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        out.read_to_string(&mut stdout).unwrap();
        stdout
    });
    let mut log = Vec::new();
    let code = wait(&mut child, RUN_LIMIT, &stderr, &mut log);
    let stdout = reader.join().unwrap();
    let log = log.join("\n");
    assert_eq!(code, Some(0), "zenith demo failed:\n{log}\n{stdout}");

    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout holds one JSON line:\n{stdout}");
    let r: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(r["ok"], true, "{r:#}");
    assert_eq!(r["v2"]["result"], "complete", "{r:#}");
    assert!(
        r["v2"]["requests"].as_u64().unwrap() > 100,
        "v2's canary saw traffic: {r:#}"
    );
    assert_eq!(
        r["v2"]["failed"], 0,
        "no client request failed during v2's canary: {r:#}\n{log}"
    );
    assert!(r["v2"]["versions"]["v2"].as_u64().unwrap() > 0, "{r:#}");
    assert_eq!(r["v3"]["result"], "failed", "{r:#}");
    assert_eq!(r["v3"]["rolled_back"], true, "{r:#}");
    assert_eq!(r["v3"]["abort"]["metric"], "error_rate", "{r:#}");
    assert!(r["v3"]["abort"]["value"].as_f64().unwrap() > 5.0, "{r:#}");
    assert_eq!(r["v3"]["abort"]["threshold"], 5.0, "{r:#}");
    assert_eq!(
        r["after"]["failed"], 0,
        "after the rollback every request succeeds: {r:#}"
    );
    assert!(
        r["after"]["versions"]
            .get("v3")
            .is_none_or(|n| n.as_u64().is_some_and(|n| n < 10)),
        "{r:#}"
    );
    assert_eq!(r["left_running"], serde_json::json!([]), "{r:#}");

    // The live view showed the steps and the verdicts.
    for want in [
        "step 1/5",
        "step 5/5",
        "check at 10%: pass",
        "FAIL: error rate",
        "traffic ",
        "summary",
    ] {
        assert!(log.contains(want), "stderr lacks {want:?}:\n{log}");
    }
    assert_eq!(
        processes_mentioning(tmp.path()),
        Vec::<String>::new(),
        "left behind:\n{log}"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "the demo's directory is removed: {left:?}");
}

#[test]
fn ctrl_c_during_the_canary_stops_the_daemon_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, stderr) = spawn(tmp.path(), &[]);
    let mut log = Vec::new();
    let start = Instant::now();
    // In the middle of v2's canary: traffic flows, old and new replicas both run.
    while !log.iter().any(|l: &String| l.contains("step 2/5")) {
        assert!(
            start.elapsed() < RUN_LIMIT,
            "no canary step 2 seen:\n{}",
            log.join("\n")
        );
        if let Ok(line) = stderr.recv_timeout(Duration::from_millis(200)) {
            log.push(line);
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the demo ended early:\n{}",
            log.join("\n")
        );
    }
    assert!(
        !processes_mentioning(tmp.path()).is_empty(),
        "the daemon and replicas run under $TMPDIR"
    );
    interrupt(&child);
    let code = wait(&mut child, Duration::from_secs(90), &stderr, &mut log);
    let log = log.join("\n");
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("interrupted"), "{log}");
    assert_eq!(
        processes_mentioning(tmp.path()),
        Vec::<String>::new(),
        "left behind:\n{log}"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "the demo's directory is removed: {left:?}");
}
