//! Repository locks. Writers that only add (`create`, `copy`, `tag`) take shared locks; those
//! that delete (`prune`, `forget`) take an exclusive one. A lock names its owner; a lock whose
//! process is gone (same host) or that has not been refreshed for 30 minutes is stale and is
//! removed by whoever meets it, so a crash never blocks anyone for long.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backend::{FileKind, LocalBackend};
use crate::error::{Error, Result};
use crate::id::Id;

/// A lock not refreshed for this long is stale.
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);

/// A lock file's contents.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LockInfo {
    pub exclusive: bool,
    pub host: String,
    pub username: String,
    pub pid: u32,
    pub created: jiff::Timestamp,
    pub refreshed: jiff::Timestamp,
    pub operation: String,
}

impl LockInfo {
    /// Is the lock's owner certainly gone?
    pub fn is_stale(&self, now: jiff::Timestamp) -> bool {
        if self.host == crate::snapshot::hostname() && !process_alive(self.pid) {
            return true;
        }
        now.duration_since(self.refreshed).unsigned_abs() > STALE_AFTER && now > self.refreshed
    }

    pub fn describe(&self) -> String {
        format!(
            "{} lock held by {}@{} (pid {}, `{}`) since {}",
            if self.exclusive { "an exclusive" } else { "a shared" },
            self.username,
            self.host,
            self.pid,
            self.operation,
            self.created.strftime("%Y-%m-%d %H:%M:%S UTC"),
        )
    }
}

fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// A held lock; dropping it removes the lock file.
pub struct Lock {
    backend: LocalBackend,
    name: String,
    stop: Arc<AtomicBool>,
    refresher: Option<JoinHandle<()>>,
}

impl Lock {
    /// Take a lock, waiting up to `wait` for conflicting locks to go away. Stale locks are
    /// removed on the way.
    pub fn acquire(backend: &LocalBackend, exclusive: bool, operation: &str, wait: Duration) -> Result<Lock> {
        let deadline = std::time::Instant::now() + wait;
        let mut pause = Duration::from_millis(50);
        loop {
            let now = jiff::Timestamp::now();
            let info = LockInfo {
                exclusive,
                host: crate::snapshot::hostname(),
                username: crate::snapshot::username(),
                pid: std::process::id(),
                created: now,
                refreshed: now,
                operation: operation.into(),
            };
            let name = Id::random().to_hex();
            write_lock(backend, &name, &info)?;
            match find_conflict(backend, &name, exclusive)? {
                None => {
                    let stop = Arc::new(AtomicBool::new(false));
                    let refresher = spawn_refresher(backend.clone(), name.clone(), info, stop.clone());
                    return Ok(Lock {
                        backend: backend.clone(),
                        name,
                        stop,
                        refresher: Some(refresher),
                    });
                }
                Some(other) => {
                    backend.remove(FileKind::Lock, &name)?;
                    if std::time::Instant::now() >= deadline {
                        return Err(Error::Locked(format!(
                            "the repository is locked: {}; wait for it to finish (or pass --retry-lock DURATION), \
                             and if that process is gone, `zenith repo unlock` removes its lock",
                            other.describe()
                        )));
                    }
                    // Jitter keeps two waiting writers from colliding forever.
                    let mut r = [0u8; 1];
                    crate::crypto::fill_random(&mut r);
                    std::thread::sleep(pause + Duration::from_millis(u64::from(r[0])));
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.refresher.take() {
            h.thread().unpark();
            let _ = h.join();
        }
        let _ = self.backend.remove(FileKind::Lock, &self.name);
    }
}

fn write_lock(backend: &LocalBackend, name: &str, info: &LockInfo) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(info).map_err(|e| Error::corrupt("lock", e))?;
    backend.write(FileKind::Lock, name, &bytes)
}

fn spawn_refresher(backend: LocalBackend, name: String, mut info: LockInfo, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            std::thread::park_timeout(REFRESH_EVERY);
            if stop.load(Ordering::Relaxed) {
                break;
            }
            info.refreshed = jiff::Timestamp::now();
            let _ = write_lock(&backend, &name, &info);
        }
    })
}

/// All locks in the repository with their names.
pub fn list_locks(backend: &LocalBackend) -> Result<Vec<(String, Option<LockInfo>)>> {
    let mut out = Vec::new();
    for f in backend.list(FileKind::Lock)? {
        let info = backend
            .read(FileKind::Lock, &f.name)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        out.push((f.name, info));
    }
    Ok(out)
}

/// Remove stale locks (or every lock with `all`); returns what was removed.
pub fn remove_locks(backend: &LocalBackend, all: bool) -> Result<Vec<String>> {
    let now = jiff::Timestamp::now();
    let mut removed = Vec::new();
    for (name, info) in list_locks(backend)? {
        let stale = info.as_ref().is_none_or(|i| i.is_stale(now));
        if all || stale {
            backend.remove(FileKind::Lock, &name)?;
            removed.push(match info {
                Some(i) => i.describe(),
                None => format!("unreadable lock {name}"),
            });
        }
    }
    Ok(removed)
}

fn find_conflict(backend: &LocalBackend, ours: &str, exclusive: bool) -> Result<Option<LockInfo>> {
    let now = jiff::Timestamp::now();
    for (name, info) in list_locks(backend)? {
        if name == ours {
            continue;
        }
        let Some(info) = info else {
            // Locks are written atomically, so an unreadable one is damaged, not in progress;
            // `repo unlock` removes it.
            continue;
        };
        if info.is_stale(now) {
            backend.remove(FileKind::Lock, &name)?;
            continue;
        }
        if exclusive || info.exclusive {
            return Ok(Some(info));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend() -> (tempfile::TempDir, LocalBackend) {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        b.create_layout().unwrap();
        (dir, b)
    }

    #[test]
    fn shared_locks_coexist_and_exclusive_excludes() {
        let (_d, b) = backend();
        let a = Lock::acquire(&b, false, "create", Duration::ZERO).unwrap();
        let _b2 = Lock::acquire(&b, false, "create", Duration::ZERO).unwrap();
        let err = Lock::acquire(&b, true, "prune", Duration::ZERO).err().unwrap();
        assert!(err.to_string().contains("shared lock held by"), "{err}");
        assert!(err.to_string().contains(&format!("pid {}", std::process::id())));
        drop(a);
        drop(_b2);
        let _x = Lock::acquire(&b, true, "prune", Duration::ZERO).unwrap();
        assert!(Lock::acquire(&b, false, "create", Duration::ZERO).is_err());
    }

    #[test]
    fn a_dead_process_lock_is_removed_on_sight() {
        let (_d, b) = backend();
        let now = jiff::Timestamp::now();
        let dead = LockInfo {
            exclusive: true,
            host: crate::snapshot::hostname(),
            username: "ghost".into(),
            pid: u32::MAX - 1,
            created: now,
            refreshed: now,
            operation: "prune".into(),
        };
        write_lock(&b, "deadbeef", &dead).unwrap();
        let _l = Lock::acquire(&b, true, "prune", Duration::ZERO).unwrap();
        assert_eq!(list_locks(&b).unwrap().len(), 1);
    }

    #[test]
    fn an_old_lock_from_another_host_is_stale() {
        let old = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(31 * 60);
        let info = LockInfo {
            exclusive: false,
            host: "elsewhere".into(),
            username: "u".into(),
            pid: 1,
            created: old,
            refreshed: old,
            operation: "create".into(),
        };
        assert!(info.is_stale(jiff::Timestamp::now()));
        let fresh = LockInfo {
            refreshed: jiff::Timestamp::now(),
            ..info
        };
        assert!(!fresh.is_stale(jiff::Timestamp::now()));
    }
}
