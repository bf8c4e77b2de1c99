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
    let chunker = Chunker::new(repo.config().chunker, repo.key().chunker_seed());
    let known = Known::new(index, &recovered);
    let ctx = ReadCtx {
        key: repo.key(),
        chunker: &chunker,
        known: &known,
        saver: &saver,
        progress,
    };
    progress.start("snapshot", None);
    // Reader threads read, cut and hash files while the walker goes on; the walker builds
    // each directory's tree once its files are read.
    let walked = std::thread::scope(|s| -> Result<_> {
        let (jobs, job_rx) = crossbeam_channel::bounded::<ReadJob>(64);
        for _ in 0..threads.max(1) {
            let job_rx = job_rx.clone();
            let ctx = &ctx;
            s.spawn(move || {
                let mut buf = Vec::new();
                for job in job_rx {
                    let result = read_content(ctx, &job.path, job.size, job.blocks, &mut buf);
                    let _ = job.reply.send((job.slot, result));
                }
            });
        }
        let mut a = Archiver {
            repo,
            ctx: &ctx,
            jobs: Some(jobs),
            excludes,
            summary: Summary::default(),
            seen: IdSet::default(),
            stored_before: 0,
            warnings: Vec::new(),
            buf: Vec::new(),
            hardlinks: HashMap::new(),
        };
        let parent_root = match &parent {
            Some(p) => a.load_parent_tree(&p.tree),
            None => None,
        };
        let root = a.archive_roots(&paths, parent_root.as_ref());
        drop(a.jobs.take());
        Ok((
            root?,
            std::mem::take(&mut a.summary),
            a.stored_before,
            std::mem::take(&mut a.warnings),
        ))
    });
    progress.finish();
    let (root, mut summary, stored_before, warnings) = walked?;
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

/// What reading a file needs; shared by the reader threads.
struct ReadCtx<'a> {
    key: &'a crate::crypto::MasterKey,
    chunker: &'a Chunker,
    known: &'a Known,
    saver: &'a BlobSaver,
    progress: &'a dyn Progress,
}

/// A file for a reader thread; the answer goes to `reply` tagged with `slot`.
struct ReadJob {
    path: PathBuf,
    size: u64,
    blocks: u64,
    slot: usize,
    reply: crossbeam_channel::Sender<(usize, Result<FileRead>)>,
}

/// A file's contents as read: chunk ids, data regions (sparse files) and bytes read.
struct FileRead {
    content: Vec<Id>,
    extents: Option<Vec<Extent>>,
    read: u64,
}

/// The files of one directory being read by the reader threads.
struct DirReads {
    tx: crossbeam_channel::Sender<(usize, Result<FileRead>)>,
    rx: crossbeam_channel::Receiver<(usize, Result<FileRead>)>,
    /// Slot in the tree, and whether the file is changed (vs new) since the parent.
    pending: Vec<(usize, bool)>,
}

struct Archiver<'a> {
    repo: &'a Repository,
    ctx: &'a ReadCtx<'a>,
    jobs: Option<crossbeam_channel::Sender<ReadJob>>,
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
        self.ctx.progress.warn(&msg);
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
            && let Some(len) = self.ctx.known.stored_len(&id)
        {
            self.stored_before += len;
        }
    }

    fn save_tree(&mut self, mut tree: Tree) -> Result<Id> {
        tree.sort();
        let bytes = tree.encode();
        let id = self.repo.key().blob_id(&bytes);
        if !self.ctx.known.check_and_mark(&id) {
            self.ctx.saver.save(BlobKind::Tree, id, bytes)?;
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
            tree.nodes
                .push(self.archive_node(path, name.as_bytes(), &meta, pnode, None)?);
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
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut reads = DirReads {
            tx,
            rx,
            pending: Vec::new(),
        };
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
            let slot = tree.nodes.len();
            match self.archive_node(&child, name.as_bytes(), &meta, pnode, Some((&mut reads, slot))) {
                Ok(node) => tree.nodes.push(node),
                Err(Error::IoAt { path, source }) => self.warn(format!("{}: {source}", path.display())),
                Err(e) => return Err(e),
            }
        }
        self.finish_reads(&mut tree, reads)?;
        self.save_tree(tree)
    }

    /// Collect the files of a directory from the reader threads and complete their nodes;
    /// unreadable ones are left out with a warning.
    fn finish_reads(&mut self, tree: &mut Tree, reads: DirReads) -> Result<()> {
        let DirReads { tx, rx, pending } = reads;
        drop(tx);
        let mut unreadable = Vec::new();
        for _ in 0..pending.len() {
            let (slot, result) = rx
                .recv()
                .map_err(|_| Error::corrupt("snapshot create", "a reader thread stopped"))?;
            let changed = pending.iter().find(|(s, _)| *s == slot).is_some_and(|(_, c)| *c);
            match result {
                Ok(read) => {
                    let mut node = std::mem::replace(&mut tree.nodes[slot], Node::new(b"x", NodeKind::File));
                    self.complete_file(&mut node, read, changed);
                    tree.nodes[slot] = node;
                }
                Err(Error::IoAt { path, source }) => {
                    self.warn(format!("{}: {source}", path.display()));
                    unreadable.push(slot);
                }
                Err(e) => return Err(e),
            }
        }
        unreadable.sort_unstable();
        for slot in unreadable.into_iter().rev() {
            tree.nodes.remove(slot);
        }
        Ok(())
    }

    /// Account for a file just read and put its contents in its node.
    fn complete_file(&mut self, node: &mut Node, read: FileRead, changed: bool) {
        for id in &read.content {
            self.reference(*id);
        }
        self.summary.bytes_read += read.read;
        if read.extents.is_none() && read.read != node.size {
            self.warn(format!(
                "{}: changed while being read ({} bytes expected, {} read); the snapshot holds what was read",
                node.display_name(),
                node.size,
                read.read
            ));
            node.size = read.read;
        }
        node.content = read.content;
        node.extents = read.extents;
        if changed {
            self.summary.files_changed += 1;
        } else {
            self.summary.files_new += 1;
        }
        self.summary.files += 1;
        self.summary.bytes += node.size;
    }

    /// The node for one entry. A file to read is handed to the reader threads when `defer`
    /// is given (its node is completed by `finish_reads`); otherwise it is read here.
    fn archive_node(
        &mut self,
        path: &Path,
        name: &[u8],
        meta: &Metadata,
        pnode: Option<&Node>,
        defer: Option<(&mut DirReads, usize)>,
    ) -> Result<Node> {
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
                self.ctx.progress.item(&path.to_string_lossy());
                let link_key = (node.links > 1).then_some((node.device, node.inode));
                if let Some((content, extents)) = link_key.and_then(|k| self.hardlinks.get(&k)) {
                    node.content = content.clone();
                    node.extents = extents.clone();
                    self.summary.files_unmodified += 1;
                } else if let Some(p) =
                    pnode.filter(|p| unchanged(p, &node) && p.content.iter().all(|id| self.ctx.known.contains(id)))
                {
                    node.content = p.content.clone();
                    node.extents = p.extents.clone();
                    for id in &node.content {
                        self.reference(*id);
                    }
                    self.summary.files_unmodified += 1;
                    self.ctx.progress.inc(node.size);
                } else if let (Some((reads, slot)), None, Some(jobs)) = (defer, link_key, &self.jobs) {
                    let job = ReadJob {
                        path: path.to_path_buf(),
                        size: meta.size(),
                        blocks: meta.blocks(),
                        slot,
                        reply: reads.tx.clone(),
                    };
                    jobs.send(job)
                        .map_err(|_| Error::corrupt("snapshot create", "the reader threads stopped"))?;
                    reads.pending.push((slot, pnode.is_some()));
                    return Ok(node);
                } else {
                    let read = read_content(self.ctx, path, meta.size(), meta.blocks(), &mut self.buf)?;
                    self.complete_file(&mut node, read, pnode.is_some());
                    if let Some(k) = link_key {
                        self.hardlinks.insert(k, (node.content.clone(), node.extents.clone()));
                    }
                    return Ok(node);
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
}

/// Read a file: cut it into chunks, hash them, queue the new ones for storage.
fn read_content(ctx: &ReadCtx<'_>, path: &Path, size: u64, blocks: u64, buf: &mut Vec<u8>) -> Result<FileRead> {
    ctx.progress.item(&path.to_string_lossy());
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|e| Error::io_at(path, e))?;
    let extents = if blocks * 512 < size {
        data_extents(&file, size)
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
    let mut read = 0u64;
    for r in &regions {
        file.seek(SeekFrom::Start(r.offset))
            .map_err(|e| Error::io_at(path, e))?;
        let mut reader = (&file).take(r.len);
        read += ctx
            .chunker
            .for_each_chunk(&mut reader, buf, |chunk| {
                let id = ctx.key.blob_id(chunk);
                content.push(id);
                if !ctx.known.check_and_mark(&id) {
                    ctx.saver.save(BlobKind::Data, id, chunk.to_vec())?;
                }
                ctx.progress.inc(chunk.len() as u64);
                Ok(())
            })
            .map_err(|e| match e {
                Error::Io(io) => Error::io_at(path, io),
                other => other,
            })?;
    }
    Ok(FileRead { content, extents, read })
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
