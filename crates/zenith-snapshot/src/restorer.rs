//! Restoring snapshots. Everything is written into a fresh staging directory beside the
//! target, then swapped in with one atomic rename (`RENAME_EXCHANGE`), so a crash leaves
//! either the old contents or the new ones, never a mix. When the target holds data, a
//! `pre-restore` snapshot of it is taken first.
//!
//! Safety against hostile repositories: tree names are single components (checked when trees
//! are decoded), every file is created with `O_EXCL|O_NOFOLLOW`, every directory with a plain
//! `mkdir`, all inside the new staging directory, so nothing can be written outside it.

mod contents;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use self::contents::{FileJob, part_starts, write_contents};

use crate::archiver::{CreateOptions, ParentChoice, create};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::lock::Lock;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::snapshot::Snapshot;
use crate::tree::{Node, NodeKind, Tree};

/// What `snapshot restore` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Where to restore; the snapshot's own path when `None` (single-path snapshots only).
    pub target: Option<PathBuf>,
    /// Restore only these paths (relative to the snapshot's directory, or absolute as saved).
    pub includes: Vec<String>,
    /// Re-read every restored file and check it against the snapshot.
    pub verify: bool,
    /// Take a `pre-restore` snapshot of a non-empty target first.
    pub backup: bool,
    pub threads: usize,
    pub lock_wait: Duration,
}

/// What a restore did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RestoreReport {
    pub target: PathBuf,
    pub files: u64,
    pub dirs: u64,
    pub others: u64,
    pub bytes: u64,
    pub pre_restore_snapshot: Option<Id>,
    /// Files whose contents could not be restored in full, with the reason.
    pub damaged: Vec<String>,
    /// Other problems (metadata that could not be set, entries skipped).
    pub warnings: Vec<String>,
    /// Result of `--verify`, when asked.
    pub verified_files: Option<u64>,
}

/// Restore `snapshot` according to `opts`.
pub fn restore(
    repo: &Repository,
    snapshot: &Snapshot,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    let root_tree = repo.load_tree(&snapshot.tree)?;
    // A snapshot of one directory restores that directory's contents; otherwise the entries
    // of the root (one per saved path) are restored side by side.
    let (tree, base) = match root_tree.nodes.as_slice() {
        [only] if only.kind == NodeKind::Dir && snapshot.paths.len() == 1 => {
            let id = only
                .subtree
                .ok_or_else(|| Error::corrupt("snapshot root", "directory without tree"))?;
            (repo.load_tree(&id)?, Some(snapshot.paths[0].clone()))
        }
        _ => (root_tree.clone(), None),
    };
    let target = match (&opts.target, &base) {
        (Some(t), _) => std::path::absolute(t).map_err(|e| Error::io_at(t, e))?,
        (None, Some(b)) => PathBuf::from(b),
        (None, None) => {
            return Err(Error::InvalidInput(format!(
                "snapshot {} holds {} path(s) that are not one directory; choose where to put them with --target DIR",
                snapshot.id.short(),
                snapshot.paths.len()
            )));
        }
    };
    if target.file_name().is_none() {
        return Err(Error::InvalidInput(format!("cannot restore onto {}", target.display())));
    }
    let includes = normalize_includes(&opts.includes, base.as_deref());
    for (inc, given) in includes.iter().zip(&opts.includes) {
        if !path_exists(repo, &tree, inc)? {
            return Err(Error::PathNotInSnapshot {
                path: given.clone(),
                snapshot: snapshot.id.short(),
            });
        }
    }

    let mut report = RestoreReport {
        target: target.clone(),
        ..Default::default()
    };
    let target_has_data = std::fs::read_dir(&target)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if target.exists() && !target.is_dir() {
        return Err(Error::InvalidInput(format!(
            "{} exists and is not a directory",
            target.display()
        )));
    }
    if target_has_data && opts.backup {
        let pre = create(
            repo,
            &CreateOptions {
                paths: vec![target.clone()],
                kind: snapshot.kind.clone(),
                tags: vec!["pre-restore".into()],
                parent: ParentChoice::Auto,
                lock_wait: opts.lock_wait,
                ..Default::default()
            },
            progress,
        )?;
        report.pre_restore_snapshot = Some(pre.snapshot.id);
    }
    let _lock = Lock::acquire(repo.backend(), false, "snapshot restore", opts.lock_wait)?;

    let staging = make_staging(&target)?;
    let result = (|| -> Result<()> {
        let mut r = Restorer {
            repo,
            progress,
            jobs: Vec::new(),
            dir_meta: Vec::new(),
            file_meta: Vec::new(),
            hardlinks: HashMap::new(),
            links: Vec::new(),
            report: &mut report,
            includes: &includes,
            total: 0,
        };
        r.restore_tree(&tree, &staging, Path::new(""))?;
        let jobs = std::mem::take(&mut r.jobs);
        progress.start("restore", Some(r.total));
        let (damaged, warnings) = write_contents(repo, &jobs, opts.threads, progress)?;
        progress.finish();
        r.report.damaged.extend(damaged);
        r.report.warnings.extend(warnings);
        r.finish(&jobs);
        if opts.verify {
            let (checked, bad) = verify_restored(repo, &jobs);
            r.report.verified_files = Some(checked);
            r.report.damaged.extend(bad);
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    // Give the staging directory the snapshot directory's own mode and times before the swap.
    let inside = staging.parent() == Some(target.as_path());
    if let (Some(_), [root], false) = (&base, root_tree.nodes.as_slice(), inside) {
        set_meta(&staging, root, &mut report.warnings);
    }
    if staging.parent() == Some(target.as_path()) {
        swap_within(&staging, &target, &includes)?;
        if let (Some(_), [root]) = (&base, root_tree.nodes.as_slice()) {
            set_meta(&target, root, &mut report.warnings);
        }
    } else {
        swap_in(&staging, &target, &includes)?;
    }
    Ok(report)
}

/// Where to build the restore: beside the target, so one rename swaps it in; or, when the
/// target is a mount point (a volume) or its parent is not writable, inside the target.
fn make_staging(target: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let name = target.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let tag = Id::random().short();
    let parent = target.parent().unwrap_or(Path::new("/"));
    let is_mount = match (std::fs::metadata(target), std::fs::metadata(parent)) {
        (Ok(t), Ok(p)) => t.dev() != p.dev() || t.ino() == p.ino(),
        _ => false,
    };
    if !is_mount {
        fs_err::create_dir_all(parent)?;
        let beside = parent.join(format!(".{name}.zenith-restore-{tag}"));
        match std::fs::create_dir(&beside) {
            Ok(()) => return Ok(beside),
            Err(e) if !target.is_dir() => return Err(Error::io_at(&beside, e)),
            Err(_) => {}
        }
    }
    let inside = target.join(format!(".zenith-restore-{tag}"));
    fs_err::create_dir(&inside)?;
    Ok(inside)
}

/// Swap in a restore staged inside the target (a mount point): move the old entries aside,
/// move the new ones in, then delete the old. Not one atomic step, but at every instant both
/// complete sets exist on disk, and the pre-restore snapshot holds the old one too.
fn swap_within(staging: &Path, target: &Path, includes: &[Vec<u8>]) -> Result<()> {
    if !includes.is_empty() {
        return swap_includes(staging, target, includes);
    }
    let old = target.join(format!(".zenith-old-{}", Id::random().short()));
    swap_entries(staging, target, &old)
}

/// Move the entries of `target` into a new directory `old`, those of `staging` into `target`,
/// then remove both helpers. Both complete sets exist on disk at every instant.
fn swap_entries(staging: &Path, target: &Path, old: &Path) -> Result<()> {
    let staging_name = staging.file_name().unwrap_or_default().to_owned();
    fs_err::create_dir(old)?;
    for e in fs_err::read_dir(target)? {
        let name = e?.file_name();
        if name == staging_name || old.file_name() == Some(name.as_os_str()) {
            continue;
        }
        fs_err::rename(target.join(&name), old.join(&name))?;
    }
    for e in fs_err::read_dir(staging)? {
        let name = e?.file_name();
        fs_err::rename(staging.join(&name), target.join(&name))?;
    }
    fs_err::remove_dir(staging)?;
    fs_err::remove_dir_all(old)?;
    Ok(())
}

/// Does `rel` (components separated by `/`) name an entry of `tree`?
fn path_exists(repo: &Repository, tree: &Tree, rel: &[u8]) -> Result<bool> {
    let mut current = tree.clone();
    let mut parts = rel.split(|b| *b == b'/').filter(|p| !p.is_empty()).peekable();
    while let Some(part) = parts.next() {
        let Some(node) = current.nodes.iter().find(|n| n.name.as_slice() == part) else {
            return Ok(false);
        };
        if parts.peek().is_none() {
            return Ok(true);
        }
        match node.subtree {
            Some(id) if node.kind == NodeKind::Dir => current = repo.load_tree(&id)?,
            _ => return Ok(false),
        }
    }
    Ok(true)
}

fn normalize_includes(includes: &[String], base: Option<&str>) -> Vec<Vec<u8>> {
    includes
        .iter()
        .map(|inc| {
            let rel = match base {
                Some(b) if inc.starts_with(b) => &inc[b.len()..],
                _ => inc.as_str(),
            };
            rel.trim_matches('/').as_bytes().to_vec()
        })
        .filter(|i| !i.is_empty())
        .collect()
}

/// Should the entry at `rel` be restored, and with everything under it?
fn include_state(includes: &[Vec<u8>], rel: &[u8]) -> Option<bool> {
    if includes.is_empty() {
        return Some(true);
    }
    let mut partial = false;
    for inc in includes {
        let under = rel == inc.as_slice() || (rel.starts_with(inc) && rel.get(inc.len()) == Some(&b'/'));
        if under {
            return Some(true);
        }
        if inc.starts_with(rel) && inc.get(rel.len()) == Some(&b'/') {
            partial = true;
        }
    }
    partial.then_some(false)
}

/// Put `staging` in place of `target` atomically (or, with includes, each included path).
fn swap_in(staging: &Path, target: &Path, includes: &[Vec<u8>]) -> Result<()> {
    if includes.is_empty() {
        match exchange_or_rename(staging, target) {
            // A bind mount on the same file system cannot be renamed: move its entries instead.
            Err(Error::IoAt { source, .. })
                if source.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error()) =>
            {
                let old = staging.with_file_name(format!(
                    "{}.old",
                    staging.file_name().unwrap_or_default().to_string_lossy()
                ));
                return swap_entries(staging, target, &old);
            }
            other => other?,
        }
        fs_err::remove_dir_all(staging).or_else(ignore_missing)?;
        return Ok(());
    }
    swap_includes(staging, target, includes)
}

/// Swap each included path of the staged restore into the target on its own, then drop the
/// staging directory (which now holds the old versions).
fn swap_includes(staging: &Path, target: &Path, includes: &[Vec<u8>]) -> Result<()> {
    for inc in includes {
        let rel = Path::new(OsStr::from_bytes(inc));
        let from = staging.join(rel);
        if std::fs::symlink_metadata(&from).is_err() {
            continue;
        }
        let to = target.join(rel);
        if let Some(p) = to.parent() {
            fs_err::create_dir_all(p)?;
        }
        exchange_or_rename(&from, &to)?;
    }
    fs_err::remove_dir_all(staging).or_else(ignore_missing)?;
    Ok(())
}

fn ignore_missing(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

/// Swap `from` and `to` when `to` exists (after which `from` holds the old data), else move.
fn exchange_or_rename(from: &Path, to: &Path) -> Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    if std::fs::symlink_metadata(to).is_ok() {
        renameat_with(CWD, from, CWD, to, RenameFlags::EXCHANGE).map_err(|e| Error::io_at(to, e.into()))?;
    } else {
        fs_err::rename(from, to)?;
    }
    Ok(())
}

struct Restorer<'a> {
    repo: &'a Repository,
    progress: &'a dyn Progress,
    jobs: Vec<FileJob>,
    /// Directories in the order they were created (parents first), with their nodes.
    dir_meta: Vec<(PathBuf, Node)>,
    file_meta: Vec<(PathBuf, Node)>,
    hardlinks: HashMap<(u64, u64), PathBuf>,
    /// Hard links to make once their first name has been written: (existing, new).
    links: Vec<(PathBuf, PathBuf)>,
    report: &'a mut RestoreReport,
    includes: &'a [Vec<u8>],
    total: u64,
}

impl Restorer<'_> {
    fn restore_tree(&mut self, tree: &Tree, root: &Path, rel: &Path) -> Result<()> {
        for node in &tree.nodes {
            let child_rel = rel.join(OsStr::from_bytes(&node.name));
            let Some(all) = include_state(self.includes, child_rel.as_os_str().as_bytes()) else {
                continue;
            };
            let path = root.join(&child_rel);
            match node.kind {
                NodeKind::Dir => {
                    fs_err::create_dir(&path)?;
                    self.report.dirs += 1;
                    self.dir_meta.push((path.clone(), node.clone()));
                    let Some(sub) = node.subtree else { continue };
                    let subtree = match self.repo.load_tree(&sub) {
                        Ok(t) => t,
                        Err(e) => {
                            self.report.damaged.push(format!("{}/: {e}", child_rel.display()));
                            continue;
                        }
                    };
                    let saved = self.includes;
                    if all {
                        self.includes = &[];
                    }
                    self.restore_tree(&subtree, root, &child_rel)?;
                    self.includes = saved;
                }
                _ if !all => {}
                NodeKind::File => self.restore_file(node, &path, &child_rel)?,
                NodeKind::Symlink => {
                    let target = node.target.as_deref().map(|t| t.as_slice()).unwrap_or_default();
                    std::os::unix::fs::symlink(OsStr::from_bytes(target), &path).map_err(|e| Error::io_at(&path, e))?;
                    self.report.others += 1;
                    self.file_meta.push((path, node.clone()));
                }
                NodeKind::Fifo | NodeKind::CharDevice | NodeKind::BlockDevice => {
                    use rustix::fs::{CWD, FileType, Mode, mknodat};
                    let ft = match node.kind {
                        NodeKind::Fifo => FileType::Fifo,
                        NodeKind::CharDevice => FileType::CharacterDevice,
                        _ => FileType::BlockDevice,
                    };
                    match mknodat(CWD, &path, ft, Mode::from_raw_mode(0o600), node.rdev) {
                        Ok(()) => {
                            self.report.others += 1;
                            self.file_meta.push((path, node.clone()));
                        }
                        Err(e) => self
                            .report
                            .warnings
                            .push(format!("{}: cannot create: {e}", child_rel.display())),
                    }
                }
                NodeKind::Socket => self
                    .report
                    .warnings
                    .push(format!("{}: sockets are not restored", child_rel.display())),
            }
        }
        Ok(())
    }

    fn restore_file(&mut self, node: &Node, path: &Path, rel: &Path) -> Result<()> {
        self.report.files += 1;
        if node.links > 1 {
            if let Some(first) = self.hardlinks.get(&(node.device, node.inode)) {
                self.links.push((first.clone(), path.to_path_buf()));
                return Ok(());
            }
            self.hardlinks.insert((node.device, node.inode), path.to_path_buf());
        }
        self.report.bytes += node.size;
        let index = self.repo.index()?;
        let mut chunks = Vec::with_capacity(node.content.len());
        let regions = node.extents.clone().unwrap_or_else(|| {
            vec![crate::tree::Extent {
                offset: 0,
                len: node.size,
            }]
        });
        let mut ids = node.content.iter();
        'regions: for r in regions {
            let mut off = r.offset;
            let end = r.offset + r.len;
            while off < end {
                let Some(id) = ids.next() else { break 'regions };
                let Some(loc) = index.get(id) else {
                    self.report
                        .damaged
                        .push(format!("{}: chunk {id} is missing from the repository", rel.display()));
                    break 'regions;
                };
                chunks.push((off, *id, loc.raw_len));
                off += u64::from(loc.raw_len);
            }
        }
        self.total += chunks.iter().map(|c| u64::from(c.2)).sum::<u64>();
        let shared = part_starts(&chunks).len() > 1;
        if shared {
            create_file(path)?
                .set_len(node.size)
                .map_err(|e| Error::io_at(path, e))?;
        }
        self.jobs.push(FileJob {
            path: path.to_path_buf(),
            rel: rel.to_path_buf(),
            node: node.clone(),
            chunks,
            shared,
            writing: Mutex::new(()),
        });
        Ok(())
    }

    /// After the contents: hard links, then the metadata nobody set yet (shared files,
    /// symlinks and special files, then directories, children first so a read-only directory
    /// is made read-only last).
    fn finish(&mut self, jobs: &[FileJob]) {
        let mut warnings = Vec::new();
        for (first, path) in &self.links {
            if let Err(e) = std::fs::hard_link(first, path) {
                warnings.push(format!("{}: cannot link to {}: {e}", path.display(), first.display()));
            }
        }
        for j in jobs.iter().filter(|j| j.shared) {
            set_meta(&j.path, &j.node, &mut warnings);
        }
        for (path, node) in &self.file_meta {
            set_meta(path, node, &mut warnings);
        }
        for (path, node) in self.dir_meta.iter().rev() {
            set_meta(path, node, &mut warnings);
        }
        self.report.warnings.extend(warnings);
        self.progress.finish();
    }
}

fn create_file(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|e| Error::io_at(path, e))
}

/// Owner, xattrs, mode and times through an open file (no path lookups).
fn set_meta_fd(file: &std::fs::File, path: &Path, node: &Node, warnings: &mut Vec<String>) {
    use rustix::fs::{Gid, Uid, fchown};
    use xattr::FileExt as _;
    if rustix::process::geteuid().is_root() {
        let _ = fchown(file, Some(Uid::from_raw(node.uid)), Some(Gid::from_raw(node.gid)));
    }
    for x in &node.xattrs {
        if let Err(e) = file.set_xattr(OsStr::from_bytes(&x.name), &x.value) {
            warnings.push(format!(
                "{}: xattr {}: {e}",
                path.display(),
                String::from_utf8_lossy(&x.name)
            ));
        }
    }
    if let Err(e) = file.set_permissions(std::fs::Permissions::from_mode(node.mode)) {
        warnings.push(format!("{}: mode: {e}", path.display()));
    }
    if let Err(e) = filetime::set_file_handle_times(file, None, Some(mtime_of(node))) {
        warnings.push(format!("{}: times: {e}", path.display()));
    }
}

fn mtime_of(node: &Node) -> filetime::FileTime {
    filetime::FileTime::from_unix_time(
        node.mtime_ns.div_euclid(1_000_000_000),
        node.mtime_ns.rem_euclid(1_000_000_000) as u32,
    )
}

/// Owner, xattrs, mode and times of one restored entry (in that order: chown clears setuid).
fn set_meta(path: &Path, node: &Node, warnings: &mut Vec<String>) {
    use rustix::fs::{AtFlags, CWD, Gid, Uid, chownat};
    if rustix::process::geteuid().is_root() {
        let _ = chownat(
            CWD,
            path,
            Some(Uid::from_raw(node.uid)),
            Some(Gid::from_raw(node.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        );
    }
    for x in &node.xattrs {
        if let Err(e) = xattr::set(path, OsStr::from_bytes(&x.name), &x.value) {
            warnings.push(format!(
                "{}: xattr {}: {e}",
                path.display(),
                String::from_utf8_lossy(&x.name)
            ));
        }
    }
    if node.kind != NodeKind::Symlink
        && let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(node.mode))
    {
        warnings.push(format!("{}: mode: {e}", path.display()));
    }
    let mtime = mtime_of(node);
    if let Err(e) = filetime::set_symlink_file_times(path, mtime, mtime) {
        warnings.push(format!("{}: times: {e}", path.display()));
    }
}

/// Re-read restored files and compare each chunk with its id.
fn verify_restored(repo: &Repository, jobs: &[FileJob]) -> (u64, Vec<String>) {
    let mut bad = Vec::new();
    let mut checked = 0;
    for j in jobs {
        let Ok(file) = std::fs::File::open(&j.path) else {
            bad.push(format!("{}: unreadable after restore", j.rel.display()));
            continue;
        };
        checked += 1;
        for (off, id, len) in &j.chunks {
            let mut buf = vec![0u8; *len as usize];
            if file.read_exact_at(&mut buf, *off).is_err() || repo.key().blob_id(&buf) != *id {
                bad.push(format!("{}: verification failed at offset {off}", j.rel.display()));
                break;
            }
        }
    }
    (checked, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_matching() {
        let inc = vec![b"a/b".to_vec()];
        assert_eq!(include_state(&inc, b"a"), Some(false));
        assert_eq!(include_state(&inc, b"a/b"), Some(true));
        assert_eq!(include_state(&inc, b"a/bc"), None);
        assert_eq!(include_state(&inc, b"x"), None);
        assert_eq!(include_state(&[], b"x"), Some(true));
    }
}
