//! Creating snapshots: walk the given paths, skip files whose metadata matches the parent
//! snapshot, cut the rest into chunks, store the chunks nobody stored before, and write one
//! tree per directory and finally the snapshot record.
//!
//! One thread walks, reads, cuts and hashes (fast: ~1 GiB/s); worker threads compress, seal
//! and write packs (the slow part). Memory is bounded by the read buffer and the queue.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::Metadata;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use globset::{GlobSet, GlobSetBuilder};
use serde_bytes::ByteBuf;

use crate::chunker::Chunker;
use crate::error::{Error, Result};
use crate::id::{Id, IdSet};
use crate::lock::Lock;
use crate::pack::BlobKind;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::saver::{BlobSaver, Known, adopt_unindexed_packs};
use crate::snapshot::{Snapshot, Summary};
use crate::tree::{Extent, Node, NodeKind, Tree, Xattr};

/// Which snapshot to compare against to skip unchanged files.
#[derive(Clone, Debug, Default)]
pub enum ParentChoice {
    /// The newest snapshot with the same host and paths.
    #[default]
    Auto,
    /// Read every file.
    None,
    Id(Id),
}

/// What `snapshot create` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    pub paths: Vec<PathBuf>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub tags: Vec<String>,
    pub host: Option<String>,
    pub excludes: Vec<String>,
    pub parent: ParentChoice,
    /// The snapshot's time; now when `None`.
    pub time: Option<jiff::Timestamp>,
    /// Compression workers; 0 means one per core.
    pub threads: usize,
    pub lock_wait: Duration,
}

/// A finished snapshot and the problems met on the way.
#[derive(Debug)]
pub struct CreateReport {
    pub snapshot: Snapshot,
    /// Files that could not be read (they are left out of the snapshot).
    pub warnings: Vec<String>,
}

/// Create a snapshot.
pub fn create(repo: &Repository, opts: &CreateOptions, progress: &dyn Progress) -> Result<CreateReport> {
    let started = Instant::now();
    let paths = normalize_paths(&opts.paths)?;
    let excludes = Excludes::new(&opts.excludes)?;
    let _lock = Lock::acquire(repo.backend(), false, "snapshot create", opts.lock_wait)?;

    let host = opts.host.clone().unwrap_or_else(crate::snapshot::hostname);
    let path_strings: Vec<String> = paths.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let parent = match &opts.parent {
        ParentChoice::None => None,
        ParentChoice::Id(id) => Some(repo.load_snapshot(id)?),
        ParentChoice::Auto => find_parent(repo, &host, &path_strings)?,
    };

    let index = repo.index()?;
    let recovered = adopt_unindexed_packs(repo, &index)?;
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        opts.threads
    };
    let saver = BlobSaver::new(repo, threads);
    let mut a = Archiver {
        repo,
        chunker: Chunker::new(repo.config().chunker, repo.key().chunker_seed()),
        known: Known::new(index, &recovered),
        saver: &saver,
        progress,
        excludes,
        summary: Summary::default(),
        seen: IdSet::default(),
        stored_before: 0,
        warnings: Vec::new(),
        buf: Vec::new(),
        hardlinks: HashMap::new(),
    };
    progress.start("snapshot", None);
    let parent_root = match &parent {
        Some(p) => a.load_parent_tree(&p.tree),
        None => None,
    };
    let root = a.archive_roots(&paths, parent_root.as_ref())?;
    progress.finish();
    let mut summary = std::mem::take(&mut a.summary);
    let stored_before = a.stored_before;
    let warnings = std::mem::take(&mut a.warnings);
    drop(a);
    let stats = saver.finish()?;
    summary.blobs_added = stats.blobs_added;
    summary.bytes_added = stats.bytes_added;
    summary.bytes_added_stored = stats.bytes_stored;
    summary.stored_bytes = stored_before + stats.bytes_stored;
    summary.errors = warnings.len() as u64;
    summary.duration_secs = started.elapsed().as_secs_f64();

    let snapshot = Snapshot {
        id: Id::random(),
        time: opts.time.unwrap_or_else(jiff::Timestamp::now),
        kind: opts.kind.clone(),
        name: opts.name.clone(),
        host,
        username: crate::snapshot::username(),
        paths: path_strings,
        tags: dedup_tags(&opts.tags),
        tree: root,
        parent: parent.map(|p| p.id),
        summary,
        program_version: format!("zenith {}", env!("CARGO_PKG_VERSION")),
    };
    repo.invalidate_index();
    repo.save_snapshot(&snapshot)?;
    Ok(CreateReport { snapshot, warnings })
}

fn dedup_tags(tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags
        .iter()
        .flat_map(|t| t.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    out
}

/// An absolute path with `.` and `..` resolved lexically and no trailing slash.
pub fn normalize_path(p: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(p).map_err(|e| Error::io_at(p, e))?;
    let mut clean = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                clean.pop();
            }
            std::path::Component::CurDir => {}
            other => clean.push(other),
        }
    }
    Ok(clean)
}

/// Absolute, normalized paths with distinct names, in the order given.
fn normalize_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if paths.is_empty() {
        return Err(Error::InvalidInput("give at least one path to snapshot".into()));
    }
    let mut out: Vec<PathBuf> = Vec::new();
    for p in paths {
        let clean = normalize_path(p)?;
        if clean.file_name().is_none() {
            return Err(Error::InvalidInput(format!(
                "cannot snapshot {} itself; name the directories under it instead",
                p.display()
            )));
        }
        if clean.to_str().is_none() {
            return Err(Error::InvalidInput(format!(
                "{} is not valid UTF-8; snapshot its parent directory instead",
                clean.display()
            )));
        }
        std::fs::metadata(&clean).map_err(|e| Error::io_at(&clean, e))?;
        if out.iter().any(|o| o.file_name() == clean.file_name()) {
            return Err(Error::InvalidInput(format!(
                "two paths are both named {:?}; snapshot them separately",
                clean.file_name().unwrap_or_default()
            )));
        }
        out.push(clean);
    }
    Ok(out)
}

fn find_parent(repo: &Repository, host: &str, paths: &[String]) -> Result<Option<Snapshot>> {
    let mut want = paths.to_vec();
    want.sort();
    let mut best = None;
    for s in repo.snapshots()? {
        let mut have = s.paths.clone();
        have.sort();
        if s.host == host && have == want {
            best = Some(s);
        }
    }
    Ok(best)
}

struct Excludes {
    names: GlobSet,
    paths: GlobSet,
}

impl Excludes {
    fn new(patterns: &[String]) -> Result<Excludes> {
        let mut names = GlobSetBuilder::new();
        let mut paths = GlobSetBuilder::new();
        for p in patterns {
            let glob = globset::GlobBuilder::new(p)
                .literal_separator(true)
                .build()
                .map_err(|e| Error::InvalidInput(format!("--exclude {p:?}: {e}")))?;
            if p.contains('/') {
                paths.add(glob);
            } else {
                names.add(glob);
            }
        }
        let build = |b: GlobSetBuilder| b.build().map_err(|e| Error::InvalidInput(format!("--exclude: {e}")));
        Ok(Excludes {
            names: build(names)?,
            paths: build(paths)?,
        })
    }

    fn excluded(&self, path: &Path, name: &std::ffi::OsStr) -> bool {
        self.names.is_match(name) || self.paths.is_match(path)
    }
}

/// A file's chunk ids and, for sparse files, its data regions.
type FileContent = (Vec<Id>, Option<Vec<Extent>>);

struct Archiver<'a> {
    repo: &'a Repository,
    chunker: Chunker,
    known: Known,
    saver: &'a BlobSaver,
    progress: &'a dyn Progress,
    excludes: Excludes,
    summary: Summary,
    /// Blobs this snapshot references, to count each stored byte once.
    seen: IdSet,
    /// Stored bytes of referenced blobs that were in the repository before this run.
    stored_before: u64,
    warnings: Vec<String>,
    buf: Vec<u8>,
    /// Contents of files with several links, by (device, inode), read once.
    hardlinks: HashMap<(u64, u64), FileContent>,
}

impl Archiver<'_> {
    fn warn(&mut self, msg: String) {
        self.progress.warn(&msg);
        self.warnings.push(msg);
    }

    fn load_parent_tree(&mut self, id: &Id) -> Option<Tree> {
        match self.repo.load_tree(id) {
            Ok(t) => Some(t),
            Err(e) => {
                self.warn(format!("parent tree {id} unreadable, reading files in full: {e}"));
                None
            }
        }
    }

    fn reference(&mut self, id: Id) {
        if self.seen.insert(id)
            && let Some(len) = self.known.stored_len(&id)
        {
            self.stored_before += len;
        }
    }

    fn save_tree(&mut self, mut tree: Tree) -> Result<Id> {
        tree.sort();
        let bytes = tree.encode();
        let id = self.repo.key().blob_id(&bytes);
        if !self.known.check_and_mark(&id) {
            self.saver.save(BlobKind::Tree, id, bytes)?;
        }
        self.reference(id);
        Ok(id)
    }

    fn archive_roots(&mut self, paths: &[PathBuf], parent: Option<&Tree>) -> Result<Id> {
        let mut tree = Tree::default();
        for path in paths {
            let name = path.file_name().unwrap_or_default();
            let meta = std::fs::metadata(path).map_err(|e| Error::io_at(path, e))?;
            let pnode = parent.and_then(|t| find_node(t, name.as_bytes()));
            tree.nodes.push(self.archive_node(path, name.as_bytes(), &meta, pnode)?);
        }
        self.save_tree(tree)
    }

    fn archive_dir(&mut self, path: &Path, parent: Option<&Tree>) -> Result<Id> {
        let mut names: Vec<OsString> = Vec::new();
        match std::fs::read_dir(path) {
            Ok(rd) => {
                for e in rd {
                    match e {
                        Ok(e) => names.push(e.file_name()),
                        Err(e) => self.warn(format!("{}: {e}", path.display())),
                    }
                }
            }
            Err(e) => self.warn(format!("{}: cannot list directory: {e}", path.display())),
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let mut tree = Tree::default();
        for name in names {
            let child = path.join(&name);
            if self.excludes.excluded(&child, &name) {
                continue;
            }
            let meta = match std::fs::symlink_metadata(&child) {
                Ok(m) => m,
                Err(e) => {
                    self.warn(format!("{}: {e}", child.display()));
                    continue;
                }
            };
            let pnode = parent.and_then(|t| find_node(t, name.as_bytes()));
            match self.archive_node(&child, name.as_bytes(), &meta, pnode) {
                Ok(node) => tree.nodes.push(node),
                Err(Error::IoAt { path, source }) => self.warn(format!("{}: {source}", path.display())),
                Err(e) => return Err(e),
            }
        }
        self.save_tree(tree)
    }

    fn archive_node(&mut self, path: &Path, name: &[u8], meta: &Metadata, pnode: Option<&Node>) -> Result<Node> {
        let mut node = node_from_meta(name, meta);
        node.xattrs = read_xattrs(path);
        match node.kind {
            NodeKind::Dir => {
                self.summary.dirs += 1;
                let ptree = match pnode.filter(|p| p.kind == NodeKind::Dir).and_then(|p| p.subtree) {
                    Some(id) => self.load_parent_tree(&id),
                    None => None,
                };
                node.subtree = Some(self.archive_dir(path, ptree.as_ref())?);
            }
            NodeKind::File => {
                self.progress.item(&path.to_string_lossy());
                let link_key = (node.links > 1).then_some((node.device, node.inode));
                if let Some((content, extents)) = link_key.and_then(|k| self.hardlinks.get(&k)) {
                    node.content = content.clone();
                    node.extents = extents.clone();
                    self.summary.files_unmodified += 1;
                } else if let Some(p) =
                    pnode.filter(|p| unchanged(p, &node) && p.content.iter().all(|id| self.known.contains(id)))
                {
                    node.content = p.content.clone();
                    node.extents = p.extents.clone();
                    for id in &node.content {
                        self.reference(*id);
                    }
                    self.summary.files_unmodified += 1;
                    self.progress.inc(node.size);
                } else {
                    self.read_file(path, meta, &mut node)?;
                    if pnode.is_some() {
                        self.summary.files_changed += 1;
                    } else {
                        self.summary.files_new += 1;
                    }
                }
                if let Some(k) = link_key {
                    self.hardlinks.insert(k, (node.content.clone(), node.extents.clone()));
                }
                self.summary.files += 1;
                self.summary.bytes += node.size;
            }
            NodeKind::Symlink => {
                let target = std::fs::read_link(path).map_err(|e| Error::io_at(path, e))?;
                node.target = Some(ByteBuf::from(target.into_os_string().into_vec()));
                self.summary.others += 1;
            }
            _ => self.summary.others += 1,
        }
        Ok(node)
    }

    fn read_file(&mut self, path: &Path, meta: &Metadata, node: &mut Node) -> Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(path)
            .map_err(|e| Error::io_at(path, e))?;
        let extents = if meta.blocks() * 512 < meta.size() {
            data_extents(&file, meta.size())
        } else {
            None
        };
        let regions = extents.clone().unwrap_or_else(|| {
            vec![Extent {
                offset: 0,
                len: u64::MAX,
            }]
        });
        let mut content = Vec::new();
        let mut read_total = 0u64;
        let mut buf = std::mem::take(&mut self.buf);
        let result = (|| -> Result<()> {
            for r in &regions {
                file.seek(SeekFrom::Start(r.offset))
                    .map_err(|e| Error::io_at(path, e))?;
                let mut reader = (&file).take(r.len);
                let n = self
                    .chunker
                    .for_each_chunk(&mut reader, &mut buf, |chunk| {
                        let id = self.repo.key().blob_id(chunk);
                        content.push(id);
                        if !self.known.check_and_mark(&id) {
                            self.saver.save(BlobKind::Data, id, chunk.to_vec())?;
                        }
                        self.progress.inc(chunk.len() as u64);
                        Ok(())
                    })
                    .map_err(|e| match e {
                        Error::Io(io) => Error::io_at(path, io),
                        other => other,
                    })?;
                read_total += n;
            }
            Ok(())
        })();
        self.buf = buf;
        result?;
        for id in &content {
            self.reference(*id);
        }
        self.summary.bytes_read += read_total;
        if extents.is_none() && read_total != node.size {
            self.warn(format!(
                "{}: changed while being read ({} bytes expected, {read_total} read); the snapshot holds what was read",
                path.display(),
                node.size
            ));
            node.size = read_total;
        }
        node.content = content;
        node.extents = extents;
        Ok(())
    }
}

fn find_node<'t>(tree: &'t Tree, name: &[u8]) -> Option<&'t Node> {
    tree.nodes
        .binary_search_by(|n| n.name.as_slice().cmp(name))
        .ok()
        .map(|i| &tree.nodes[i])
}

/// The file is the same as in the parent snapshot if its size, times and inode are.
fn unchanged(parent: &Node, now: &Node) -> bool {
    parent.kind == NodeKind::File
        && parent.size == now.size
        && parent.mtime_ns == now.mtime_ns
        && parent.ctime_ns == now.ctime_ns
        && parent.inode == now.inode
}

fn node_from_meta(name: &[u8], meta: &Metadata) -> Node {
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        NodeKind::Dir
    } else if ft.is_symlink() {
        NodeKind::Symlink
    } else if ft.is_fifo() {
        NodeKind::Fifo
    } else if ft.is_socket() {
        NodeKind::Socket
    } else if ft.is_char_device() {
        NodeKind::CharDevice
    } else if ft.is_block_device() {
        NodeKind::BlockDevice
    } else {
        NodeKind::File
    };
    let mut n = Node::new(name, kind);
    n.mode = meta.mode() & 0o7777;
    n.uid = meta.uid();
    n.gid = meta.gid();
    n.mtime_ns = meta
        .mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec());
    n.ctime_ns = meta
        .ctime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.ctime_nsec());
    n.inode = meta.ino();
    n.device = meta.dev();
    n.links = meta.nlink();
    n.size = if kind == NodeKind::File { meta.size() } else { 0 };
    n.rdev = if matches!(kind, NodeKind::CharDevice | NodeKind::BlockDevice) {
        meta.rdev()
    } else {
        0
    };
    n
}

fn read_xattrs(path: &Path) -> Vec<Xattr> {
    let Ok(names) = xattr::list(path) else {
        return Vec::new();
    };
    let mut out: Vec<Xattr> = names
        .filter_map(|name| {
            let value = xattr::get(path, &name).ok()??;
            Some(Xattr {
                name: ByteBuf::from(name.into_vec()),
                value: ByteBuf::from(value),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Data regions of a file with holes, from SEEK_DATA/SEEK_HOLE; `None` when the file system
/// cannot tell or the file is dense after all.
fn data_extents(file: &std::fs::File, size: u64) -> Option<Vec<Extent>> {
    use rustix::fs::{SeekFrom as RSeek, seek};
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos < size {
        let start = match seek(file, RSeek::Data(pos)) {
            Ok(s) => s,
            Err(rustix::io::Errno::NXIO) => break,
            Err(_) => return None,
        };
        let end = seek(file, RSeek::Hole(start)).ok()?.min(size);
        if end > start {
            out.push(Extent {
                offset: start,
                len: end - start,
            });
        }
        pos = end.max(start + 1);
    }
    if out.len() == 1 && out[0].offset == 0 && out[0].len == size {
        return None;
    }
    Some(out)
}
