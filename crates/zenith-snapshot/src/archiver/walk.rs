//! The walker: lists directories depth first, hands the files to read to the reader threads in
//! batches, and saves each directory's tree as soon as its files are read and its
//! subdirectories saved. It never waits for one directory's files before listing the next, so
//! the readers always have work, even while one of them reads a file of many GB.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::Metadata;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crossbeam_channel::{Receiver, Select, Sender};
use serde_bytes::ByteBuf;

use super::Excludes;
use super::meta::{find_node, node_from_meta, read_xattrs, unchanged};
use super::read::{Batch, FileDone, FileJob, FileRead, FileReader, ReadCtx};
use crate::error::{Error, Result};
use crate::id::{Id, IdSet};
use crate::pack::BlobKind;
use crate::repo::Repository;
use crate::snapshot::Summary;
use crate::tree::{Extent, Node, NodeKind, Tree};

/// A batch goes to the readers once it holds this many files or bytes.
const BATCH_FILES: usize = 64;
const BATCH_BYTES: u64 = 1 << 20;

/// A file's chunk ids and, for sparse files, its data regions.
type FileContent = (Vec<Id>, Option<Vec<Extent>>);

/// A directory whose tree cannot be saved yet.
struct OpenDir {
    /// Its entries in name order; `None` for a file left out because it could not be read.
    nodes: Vec<Option<Node>>,
    /// Files being read and subdirectories not saved yet, plus one while it is being listed.
    waiting: usize,
    /// Its own node: the open parent directory and the slot in it; `None` for the root.
    parent: Option<(usize, usize)>,
}

/// What the walk found, besides the root tree.
pub(super) struct Walked {
    pub summary: Summary,
    /// Stored bytes of referenced blobs that were in the repository before this run.
    pub stored_before: u64,
    pub warnings: Vec<String>,
}

pub(super) struct Walker<'a> {
    repo: &'a Repository,
    ctx: &'a ReadCtx<'a>,
    excludes: Excludes,
    /// Reads the files the walker reads itself: hard links (later links share the result)
    /// and files named on the command line.
    inline: FileReader<'a>,
    jobs: Option<Sender<Batch>>,
    done: Receiver<Vec<FileDone>>,
    batch: Batch,
    batch_bytes: u64,
    /// Open directories by number; numbers of saved ones are reused.
    dirs: Vec<Option<OpenDir>>,
    free: Vec<usize>,
    root: Option<Id>,
    summary: Summary,
    /// Blobs this snapshot references, to count each stored byte once.
    seen: IdSet,
    stored_before: u64,
    warnings: Vec<String>,
    /// Contents of files with several links, by (device, inode), read once.
    hardlinks: HashMap<(u64, u64), FileContent>,
}

impl<'a> Walker<'a> {
    pub fn new(
        repo: &'a Repository,
        ctx: &'a ReadCtx<'a>,
        excludes: Excludes,
        jobs: Sender<Batch>,
        done: Receiver<Vec<FileDone>>,
    ) -> Walker<'a> {
        Walker {
            repo,
            ctx,
            excludes,
            inline: FileReader::new(ctx),
            jobs: Some(jobs),
            done,
            batch: Vec::new(),
            batch_bytes: 0,
            dirs: Vec::new(),
            free: Vec::new(),
            root: None,
            summary: Summary::default(),
            seen: IdSet::default(),
            stored_before: 0,
            warnings: Vec::new(),
            hardlinks: HashMap::new(),
        }
    }

    /// Walk `paths` (compared with the parent snapshot's tree `parent`), wait for every file
    /// to be read, and return the root tree's id.
    pub fn run(&mut self, paths: &[PathBuf], parent: Option<&Id>) -> Result<Id> {
        let parent_tree = parent.and_then(|id| self.load_parent_tree(id));
        let root = self.open_dir(None);
        for path in paths {
            let name = path.file_name().unwrap_or_default();
            let meta = std::fs::metadata(path).map_err(|e| Error::io_at(path, e))?;
            let pnode = parent_tree.as_ref().and_then(|t| find_node(t, name.as_bytes()));
            // A path named on the command line that cannot be read is an error, not a warning.
            self.archive_node(root, path, name.as_bytes(), &meta, pnode, false)?;
        }
        self.settle(root)?;
        self.send_batch()?;
        self.inline.flush()?;
        // The readers finish what is queued, then stop.
        drop(self.jobs.take());
        loop {
            if let Some(id) = self.root {
                return Ok(id);
            }
            let answers = self
                .done
                .recv()
                .map_err(|_| Error::corrupt("snapshot create", "the file readers stopped"))?;
            self.apply(answers)?;
        }
    }

    /// The totals and warnings, once the walk is over.
    pub fn into_walked(self) -> Walked {
        Walked {
            summary: self.summary,
            stored_before: self.stored_before,
            warnings: self.warnings,
        }
    }

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

    fn open_dir(&mut self, parent: Option<(usize, usize)>) -> usize {
        if let Some((p, _)) = parent {
            self.dir_mut(p).waiting += 1;
        }
        let dir = Some(OpenDir {
            nodes: Vec::new(),
            waiting: 1,
            parent,
        });
        match self.free.pop() {
            Some(i) => {
                self.dirs[i] = dir;
                i
            }
            None => {
                self.dirs.push(dir);
                self.dirs.len() - 1
            }
        }
    }

    fn dir_mut(&mut self, dir: usize) -> &mut OpenDir {
        self.dirs[dir].as_mut().expect("an open directory")
    }

    /// Add a node to an open directory; returns its slot.
    fn place(&mut self, dir: usize, node: Node) -> usize {
        let nodes = &mut self.dir_mut(dir).nodes;
        nodes.push(Some(node));
        nodes.len() - 1
    }

    /// One thing `dir` waited for is done. When nothing is left, save its tree, put the id in
    /// its node, and tell its parent the same way.
    fn settle(&mut self, mut dir: usize) -> Result<()> {
        loop {
            let open = self.dir_mut(dir);
            open.waiting -= 1;
            if open.waiting > 0 {
                return Ok(());
            }
            let open = self.dirs[dir].take().expect("an open directory");
            self.free.push(dir);
            let id = self.save_tree(Tree {
                nodes: open.nodes.into_iter().flatten().collect(),
            })?;
            let Some((parent, slot)) = open.parent else {
                self.root = Some(id);
                return Ok(());
            };
            if let Some(node) = self.dir_mut(parent).nodes[slot].as_mut() {
                node.subtree = Some(id);
            }
            dir = parent;
        }
    }

    /// List a directory into a new open directory at `at` (its node's place in its parent).
    fn archive_dir(&mut self, path: &Path, parent: Option<&Tree>, at: (usize, usize)) -> Result<()> {
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
        let dir = self.open_dir(Some(at));
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
            match self.archive_node(dir, &child, name.as_bytes(), &meta, pnode, true) {
                Ok(()) => {}
                Err(Error::IoAt { path, source }) => self.warn(format!("{}: {source}", path.display())),
                Err(e) => return Err(e),
            }
        }
        self.settle(dir)?;
        // Take in what the readers have finished meanwhile.
        while let Ok(answers) = self.done.try_recv() {
            self.apply(answers)?;
        }
        Ok(())
    }

    /// Add the node for one entry to `dir`. A file to read goes to the readers when `defer`
    /// (its node is completed when the answer comes); otherwise it is read here.
    fn archive_node(
        &mut self,
        dir: usize,
        path: &Path,
        name: &[u8],
        meta: &Metadata,
        pnode: Option<&Node>,
        defer: bool,
    ) -> Result<()> {
        let mut node = node_from_meta(name, meta);
        node.xattrs = read_xattrs(path);
        match node.kind {
            NodeKind::Dir => {
                self.summary.dirs += 1;
                let ptree = match pnode.filter(|p| p.kind == NodeKind::Dir).and_then(|p| p.subtree) {
                    Some(id) => self.load_parent_tree(&id),
                    None => None,
                };
                let slot = self.place(dir, node);
                return self.archive_dir(path, ptree.as_ref(), (dir, slot));
            }
            NodeKind::File => {
                let link_key = (node.links > 1).then_some((node.device, node.inode));
                if let Some((content, extents)) = link_key.and_then(|k| self.hardlinks.get(&k)) {
                    node.content = content.clone();
                    node.extents = extents.clone();
                    self.summary.files_unmodified += 1;
                } else if let Some(p) =
                    pnode.filter(|p| unchanged(p, &node) && p.content.iter().all(|id| self.ctx.known.contains(id)))
                {
                    self.ctx.progress.item(&path.to_string_lossy());
                    node.content = p.content.clone();
                    node.extents = p.extents.clone();
                    for id in &node.content {
                        self.reference(*id);
                    }
                    self.summary.files_unmodified += 1;
                    self.ctx.progress.inc(node.size);
                } else if defer && link_key.is_none() {
                    let slot = self.place(dir, node);
                    self.dir_mut(dir).waiting += 1;
                    return self.queue(FileJob {
                        path: path.to_path_buf(),
                        size: meta.size(),
                        blocks: meta.blocks(),
                        dir,
                        slot,
                        changed: pnode.is_some(),
                    });
                } else {
                    let read = self.inline.read_file(path, meta.size(), meta.blocks())?;
                    self.complete_file(&mut node, read, pnode.is_some());
                    if let Some(k) = link_key {
                        self.hardlinks.insert(k, (node.content.clone(), node.extents.clone()));
                    }
                    self.place(dir, node);
                    return Ok(());
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
        self.place(dir, node);
        Ok(())
    }

    fn queue(&mut self, job: FileJob) -> Result<()> {
        self.batch_bytes += job.size;
        self.batch.push(job);
        if self.batch.len() >= BATCH_FILES || self.batch_bytes >= BATCH_BYTES {
            self.send_batch()?;
        }
        Ok(())
    }

    /// Hand the batch to the readers; while they are all busy, take in their answers.
    fn send_batch(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        let jobs = self.jobs.clone().expect("batches are sent before the walk ends");
        let done = self.done.clone();
        let stopped = || Error::corrupt("snapshot create", "the file readers stopped");
        loop {
            let mut sel = Select::new();
            let send = sel.send(&jobs);
            sel.recv(&done);
            let oper = sel.select();
            if oper.index() == send {
                return oper.send(&jobs, batch).map_err(|_| stopped());
            }
            let answers = oper.recv(&done).map_err(|_| stopped())?;
            self.apply(answers)?;
        }
    }

    /// Complete the nodes of files the readers have read.
    fn apply(&mut self, answers: Vec<FileDone>) -> Result<()> {
        for FileDone {
            dir,
            slot,
            changed,
            result,
        } in answers
        {
            match result {
                Ok(read) => {
                    let mut node = self.dir_mut(dir).nodes[slot]
                        .take()
                        .expect("a node waiting for its contents");
                    self.complete_file(&mut node, read, changed);
                    self.dir_mut(dir).nodes[slot] = Some(node);
                }
                Err(Error::IoAt { path, source }) => {
                    self.warn(format!("{}: {source}", path.display()));
                    self.dir_mut(dir).nodes[slot] = None;
                }
                Err(e) => return Err(e),
            }
            self.settle(dir)?;
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
}
