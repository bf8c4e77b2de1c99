//! A file much larger than any buffer streams through bounded memory, both ways.

use std::io::Write;
use std::time::Duration;

use crate::util::*;

/// Run a command and return its peak resident memory in KiB (polled from /proc).
fn peak_rss_kib(mut cmd: std::process::Command) -> u64 {
    let mut child = cmd.stdout(std::process::Stdio::null()).spawn().unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_path)
            && let Some(line) = s.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success());
            return peak;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_one_gib_file_streams_through_bounded_memory() {
    let env = Env::new();
    let block = noise(1 << 20, 77);
    let mut f = std::io::BufWriter::new(std::fs::File::create(env.path("big")).unwrap());
    for i in 0u64..1024 {
        // Every MiB differs, so nothing deduplicates away.
        let mut b = block.clone();
        for (j, chunk) in b.chunks_mut(4096).enumerate() {
            chunk[..8].copy_from_slice(&(i * 1000 + j as u64).to_le_bytes());
        }
        f.write_all(&b).unwrap();
    }
    f.into_inner().unwrap().sync_all().unwrap();
    let mut c = env.cmd();
    c.args(["snapshot", "create", "big"]);
    let create_kib = peak_rss_kib(c);
    let mut c = env.cmd();
    c.args(["snapshot", "restore", "latest", "--target", "out"]);
    let restore_kib = peak_rss_kib(c);
    eprintln!("peak RSS: create {create_kib} KiB, restore {restore_kib} KiB");
    assert!(create_kib < 256 * 1024, "create used {create_kib} KiB for a 1 GiB file");
    assert!(
        restore_kib < 256 * 1024,
        "restore used {restore_kib} KiB for a 1 GiB file"
    );
    assert_eq!(std::fs::metadata(env.path("out/big")).unwrap().len(), 1 << 30);
}
