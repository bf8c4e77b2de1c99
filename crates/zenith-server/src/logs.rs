//! Reading replica logs for `zenith logs`: the tail of every log of an app, then the lines
//! added since (through the runtime's `LogFollower`), across new replicas and copy-truncate
//! rotation. Each replica writes
//! `<run dir>/<replica id>/output.log` itself, so logs outlive a daemon restart.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use zenith_runtime::LogFollower;

/// How much of a log the initial tail reads at most.
const TAIL_BYTES: u64 = 256 * 1024;

pub struct Tailer {
    run_dir: PathBuf,
    prefix: String,
    /// One follower per replica log already shown.
    followers: HashMap<String, LogFollower>,
}

impl Tailer {
    pub fn new(run_dir: PathBuf, prefix: String) -> Self {
        Tailer {
            run_dir,
            prefix,
            followers: HashMap::new(),
        }
    }

    /// Replica ids of this app with a log, oldest log first.
    fn replicas(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(&self.run_dir) else {
            return Vec::new();
        };
        let mut found: Vec<(std::time::SystemTime, String)> = dir
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                if !name.starts_with(&self.prefix) {
                    return None;
                }
                let meta = std::fs::metadata(e.path().join("output.log")).ok()?;
                Some((meta.modified().ok()?, name))
            })
            .collect();
        found.sort();
        found.into_iter().map(|(_, n)| n).collect()
    }

    fn log_path(&self, id: &str) -> PathBuf {
        self.run_dir.join(id).join("output.log")
    }

    /// The last `lines` lines of every log, prefixed with the replica id; following goes on
    /// from exactly where each tail ended.
    pub fn initial(&mut self, lines: usize) -> Vec<String> {
        let mut out = Vec::new();
        for id in self.replicas() {
            let path = self.log_path(&id);
            let Ok(mut f) = std::fs::File::open(&path) else {
                continue;
            };
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let from = len.saturating_sub(TAIL_BYTES);
            let mut buf = Vec::new();
            if f.seek(SeekFrom::Start(from)).is_err() || f.read_to_end(&mut buf).is_err() {
                continue;
            }
            let complete = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let text = String::from_utf8_lossy(&buf[..complete]);
            let all: Vec<&str> = text.lines().collect();
            let skip = all.len().saturating_sub(lines);
            out.push(prefixed(&id, &all[skip..]));
            if let Ok(follower) = LogFollower::from_offset(&path, from + complete as u64) {
                self.followers.insert(id, follower);
            }
        }
        out.retain(|c| !c.is_empty());
        out
    }

    /// Lines written since the last call, in whole lines, new replicas' logs from their start.
    pub fn poll(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for id in self.replicas() {
            if !self.followers.contains_key(&id) {
                let Ok(follower) = LogFollower::from_start(&self.log_path(&id)) else {
                    continue;
                };
                self.followers.insert(id.clone(), follower);
            }
            let follower = self.followers.get_mut(&id).expect("inserted above");
            if let Ok(lines) = follower.poll_lines() {
                let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
                out.push(prefixed(&id, &lines));
            }
        }
        out.retain(|c| !c.is_empty());
        out
    }
}

fn prefixed(id: &str, lines: &[&str]) -> String {
    let mut s = String::new();
    for l in lines {
        s.push_str(id);
        s.push_str(" | ");
        s.push_str(l);
        s.push('\n');
    }
    s
}
