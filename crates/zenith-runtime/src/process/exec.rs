//! Running a command in a replica's environment (exec health probes, pre-stop hooks): same
//! clean environment, workdir and secrets directory as the replica, in a process group of its
//! own so that a timeout kills everything it started. Only the tail of its combined output is
//! kept: probes and hooks are judged by their status, the output is for the error message.

use std::collections::VecDeque;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use rustix::process::Signal;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::time::Instant;

use super::{launch, procfs};
use crate::{ExecOutput, ExitStatus, ReplicaSpec, RuntimeError};

/// How much of the combined output is kept.
pub(crate) const OUTPUT_TAIL: usize = 4096;
/// After the command ended, how long to wait for descendants still holding the output pipe.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

pub(super) async fn exec(spec: &ReplicaSpec, argv: &[String], timeout: Duration) -> Result<ExecOutput, RuntimeError> {
    let command = argv.join(" ");
    let exec_error = |source: io::Error| RuntimeError::Exec {
        id: spec.id.clone(),
        command: command.clone(),
        source,
    };
    let mut cmd = launch::command(spec, argv)
        .ok_or_else(|| exec_error(io::Error::new(io::ErrorKind::InvalidInput, "the command is empty")))?;
    // One pipe for stdout and stderr keeps their lines in the order they were written.
    let (reader, writer) = io::pipe().map_err(exec_error)?;
    let writer_err = writer.try_clone().map_err(exec_error)?;
    cmd.stdout(writer).stderr(writer_err);
    let mut child = cmd.spawn().map_err(exec_error)?;
    // Drop our copies of the write end, or the read below never sees end of file.
    drop(cmd);
    let pgid = child.id().and_then(|pid| i32::try_from(pid).ok());
    let mut guard = KillOnDrop(pgid);
    let mut output = pipe::Receiver::from_owned_fd(OwnedFd::from(reader)).map_err(exec_error)?;

    let mut tail = Tail::default();
    let mut chunk = vec![0_u8; 4096];
    let mut status = None;
    let mut eof = false;
    let mut timed_out = false;
    let mut deadline = Instant::now() + timeout;
    while !(eof && status.is_some()) {
        tokio::select! {
            read = output.read(&mut chunk), if !eof => match read {
                Ok(0) => eof = true,
                Ok(n) => tail.push(&chunk[..n]),
                Err(e) => {
                    tracing::debug!(replica = %spec.id, error = %e, "exec output read failed");
                    eof = true;
                }
            },
            waited = child.wait(), if status.is_none() => {
                // Reaped: from now on the group id is only safe while descendants hold it.
                guard.0 = None;
                status = Some(waited.map_err(exec_error)?);
            }
            () = tokio::time::sleep_until(deadline) => {
                // Still running, or ended with descendants holding the pipe: kill the group.
                // Before the leader is reaped its group id cannot be recycled; after, the
                // descendants holding the pipe keep the group (and so its id) alive.
                if let Some(pgid) = pgid
                    && let Err(e) = procfs::signal_group(pgid, Signal::KILL)
                {
                    tracing::warn!(replica = %spec.id, pgid, error = %e, "could not kill exec group");
                }
                if status.is_some() || timed_out {
                    break;
                }
                timed_out = true;
                deadline = Instant::now() + DRAIN_GRACE;
            }
        }
    }
    let output = tail.into_string();
    if timed_out {
        tracing::info!(replica = %spec.id, command, ?timeout, "exec timed out; killed");
        return Err(RuntimeError::ExecTimeout {
            id: spec.id.clone(),
            command,
            timeout,
            output,
        });
    }
    let status = match status {
        Some(status) => match (status.code(), status.signal()) {
            (Some(code), _) => ExitStatus::Code(code),
            (None, Some(signal)) => ExitStatus::Signal(signal),
            (None, None) => ExitStatus::Unknown,
        },
        None => ExitStatus::Unknown,
    };
    Ok(ExecOutput { status, output })
}

/// Kills the command's group if the exec future is dropped (a caller's own timeout) before the
/// leader was reaped.
struct KillOnDrop(Option<i32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            // Errors are moot here: the group is either gone or cannot be signalled by us.
            let _ = procfs::signal_group(pgid, Signal::KILL);
        }
    }
}

/// The last [`OUTPUT_TAIL`] bytes written.
#[derive(Default)]
struct Tail(VecDeque<u8>);

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        let bytes = &bytes[bytes.len().saturating_sub(OUTPUT_TAIL)..];
        let excess = (self.0.len() + bytes.len()).saturating_sub(OUTPUT_TAIL);
        self.0.drain(..excess);
        self.0.extend(bytes);
    }

    fn into_string(self) -> String {
        let bytes: Vec<u8> = self.0.into();
        // The cut may have split a character: start at the next boundary.
        let start = bytes.iter().position(|b| (*b as i8) >= -0x40).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_bytes() {
        let mut tail = Tail::default();
        tail.push(&[b'a'; 3000]);
        tail.push(&[b'b'; 3000]);
        let s = tail.into_string();
        assert_eq!(s.len(), OUTPUT_TAIL);
        assert!(s.ends_with(&"b".repeat(3000)));
        assert!(s.starts_with('a'));
    }

    #[test]
    fn tail_skips_a_split_character() {
        let mut tail = Tail::default();
        tail.push("é".repeat(OUTPUT_TAIL).as_bytes());
        let s = tail.into_string();
        assert!(s.chars().all(|c| c == 'é'));
    }
}
