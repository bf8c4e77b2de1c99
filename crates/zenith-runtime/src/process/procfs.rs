//! What the process driver learns from and does to the kernel: `/proc/PID/stat` (a pid's start
//! time tells a live replica from a recycled pid), waiting for a process that may not be our
//! child to end, and signalling a process group. Kept apart so the rest of the driver never
//! touches raw pids or parses kernel text.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use rustix::process::{Pid, PidfdFlags, Signal};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// How often the fallback watcher looks at `/proc` when pidfds are unavailable.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// The few fields of `/proc/PID/stat` the driver needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// Field 3: `R`, `S`, `Z` (zombie), `X` (dead), …
    pub state: char,
    /// Field 5: the process group.
    pub pgid: i32,
    /// Field 22: start time in clock ticks since boot.
    pub start_time: u64,
    /// Fields 14 and 15: CPU time spent in user and kernel mode, in clock ticks.
    pub cpu_ticks: u64,
}

impl ProcStat {
    /// A zombie has exited already; only its parent's `wait` is missing.
    pub fn has_exited(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// Parses one `/proc/PID/stat` line. Field 2 is `(comm)`, which may itself hold spaces and
/// parentheses, so the fixed fields are counted from the last `)`.
pub(crate) fn parse_stat(line: &str) -> Option<ProcStat> {
    let rest = &line[line.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `fields[0]` is field 3 of the stat line.
    let state = fields.first()?.chars().next()?;
    let pgid = fields.get(5 - 3)?.parse().ok()?;
    let start_time = fields.get(22 - 3)?.parse().ok()?;
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(ProcStat {
        state,
        pgid,
        start_time,
        cpu_ticks: utime + stime,
    })
}

fn stat_path(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/stat"))
}

/// Reads `/proc/PID/stat`; `Ok(None)` when no such process exists.
pub(crate) fn read_stat(pid: u32) -> io::Result<Option<ProcStat>> {
    match fs_err::read_to_string(stat_path(pid)) {
        Ok(line) => Ok(parse_stat(&line)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        // A process that ends between open and read reports ESRCH on the read.
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::SRCH.raw_os_error()) => Ok(None),
        Err(e) => Err(e),
    }
}

/// CPU time (user + kernel) the process has used so far; `None` once it is gone or when the
/// pid now belongs to another process.
pub(crate) fn cpu_time(pid: u32, start_time: u64) -> Option<Duration> {
    let stat = read_stat(pid).ok()??;
    if stat.start_time != start_time || stat.has_exited() {
        return None;
    }
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Some(Duration::from_secs_f64(stat.cpu_ticks as f64 / hz as f64))
}

/// True while `pid` is the process that started at `start_time` and has not exited.
pub(crate) fn is_alive(pid: u32, start_time: u64) -> bool {
    matches!(read_stat(pid), Ok(Some(stat)) if stat.start_time == start_time && !stat.has_exited())
}

fn to_pid(pid: u32) -> io::Result<Pid> {
    i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("invalid pid {pid}")))
}

/// A handle that resolves once a process has exited, whether or not it is our child.
pub(crate) enum ExitWatch {
    /// A pidfd polls readable when its process exits (Linux 5.3+). It also pins the identity:
    /// the fd refers to the process that had the pid when it was opened, never to a successor.
    Pidfd(AsyncFd<std::os::fd::OwnedFd>),
    /// Kernels without pidfds: look at `/proc` every [`POLL_INTERVAL`].
    Poll { pid: u32, start_time: u64 },
}

impl ExitWatch {
    /// Opens the watch. Call it before checking the start time so that the check and the
    /// watch are about the same process.
    pub fn open(pid: u32, start_time: u64) -> io::Result<Self> {
        match rustix::process::pidfd_open(to_pid(pid)?, PidfdFlags::empty()) {
            // `with_interest` is deprecated because a generic `T` could change its raw fd
            // behind tokio's back; the replacement is `unsafe`, which this workspace forbids.
            // For an `OwnedFd` moved into the `AsyncFd` the fd stays the same open pidfd for
            // the whole lifetime, which is exactly the replacement's safety contract.
            #[allow(deprecated)]
            Ok(fd) => Ok(ExitWatch::Pidfd(AsyncFd::with_interest(fd, Interest::READABLE)?)),
            Err(e) if e == rustix::io::Errno::NOSYS => {
                tracing::debug!(pid, "pidfd_open unavailable; watching /proc instead");
                Ok(ExitWatch::Poll { pid, start_time })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Resolves once the process has exited (it may still be an unreaped zombie).
    pub async fn exited(&self) {
        match self {
            ExitWatch::Pidfd(fd) => {
                // Readable means exited; an error from the reactor leaves nothing to wait for.
                if let Err(e) = fd.readable().await {
                    tracing::warn!(error = %e, "pidfd watch failed; treating the process as gone");
                }
            }
            ExitWatch::Poll { pid, start_time } => {
                while is_alive(*pid, *start_time) {
                    tokio::time::sleep(POLL_INTERVAL).await;
                }
            }
        }
    }
}

/// Sends `signal` to every process of group `pgid`. `Ok(false)` when the group is empty.
pub(crate) fn signal_group(pgid: i32, signal: Signal) -> io::Result<bool> {
    let pid = Pid::from_raw(pgid)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("invalid process group {pgid}")))?;
    match rustix::process::kill_process_group(pid, signal) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::SRCH => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_hostile_comm() {
        let tail = "S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        for comm in ["(sleep)", "(a b) c)", "((x))", "(:) ) ( ))"] {
            let line = format!("4242 {comm} {tail}\n");
            assert_eq!(
                parse_stat(&line),
                Some(ProcStat {
                    state: 'S',
                    pgid: 4242,
                    start_time: 987654,
                    cpu_ticks: 3,
                }),
                "comm {comm}"
            );
        }
    }

    #[test]
    fn rejects_truncated_lines() {
        assert_eq!(parse_stat("12 (x) S 1 2"), None);
        assert_eq!(parse_stat("no parenthesis at all"), None);
    }

    #[test]
    fn own_cpu_time_is_measured_and_a_wrong_start_time_is_refused() {
        let me = std::process::id();
        let stat = read_stat(me).unwrap().unwrap();
        // Burn a little CPU so the figure cannot be zero by accident of timing.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(cpu_time(me, stat.start_time).is_some());
        assert_eq!(cpu_time(me, stat.start_time + 1), None);
    }

    #[test]
    fn reads_own_stat() {
        let stat = read_stat(std::process::id()).unwrap().unwrap();
        assert!(!stat.has_exited());
        assert!(is_alive(std::process::id(), stat.start_time));
        assert!(!is_alive(std::process::id(), stat.start_time + 1));
    }
}
