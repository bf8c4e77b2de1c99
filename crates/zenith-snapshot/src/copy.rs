//! Copying snapshots between repositories (the seeds' push-snapshot). When both repositories
//! cut and name data the same way (the destination was made with `--copy-chunker-params`),
//! blobs move as they are: opened, checked and sealed again under the destination's key,
//! never re-chunked. Otherwise file contents are streamed through the destination's chunker
//! and the trees rebuilt with the new ids.

use std::io::Read;
use std::time::Duration;

use serde::Serialize;

use crate::chunker::Chunker;
use crate::error::{Error, Result};
use crate::id::{Id, IdMap};
use crate::lock::Lock;
use crate::pack::BlobKind;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::saver::{BlobSaver, Known, adopt_unindexed_packs};
use crate::snapshot::Snapshot;
use crate::tree::{Node, NodeKind};

/// What a copy did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CopyReport {
    /// (source id, destination id) of each snapshot copied.
    pub copied: Vec<(Id, Id)>,
    /// Snapshots the destination already had.
    pub skipped: Vec<Id>,
    pub rechunked: bool,
    pub blobs_added: u64,
    pub bytes_added_stored: u64,
}

/// Copy `snapshots` of `src` into `dst`.
pub fn copy(
    src: &Repository,
    dst: &Repository,
    snapshots: &[Snapshot],
    lock_wait: Duration,
    progress: &dyn Progress,
) -> Result<CopyReport> {
    let _src_lock = Lock::acquire(src.backend(), false, "snapshot copy (source)", lock_wait)?;
    let _dst_lock = Lock::acquire(dst.backend(), false, "snapshot copy", lock_wait)?;
    let same = src.same_chunking(dst);
    let dst_index = dst.index()?;
    let recovered = adopt_unindexed_packs(dst, &dst_index)?;
    let existing: Vec<Snapshot> = dst.snapshots()?;
    let saver = BlobSaver::new(dst, 1);
    let mut c = Copier {
        src,
        reader: src.blob_reader()?,
        dst,
        known: Known::new(dst_index, &recovered),
        saver: &saver,
        chunker: Chunker::new(dst.config().chunker, dst.key().chunker_seed()),
        tree_map: IdMap::default(),
        progress,
    };
    let mut report = CopyReport {
        rechunked: !same,
        ..Default::default()
    };
    let mut to_write = Vec::new();
    for s in snapshots {
        if existing.iter().any(|e| e.id == s.id) {
            report.skipped.push(s.id);
            continue;
        }
        progress.item(&format!("snapshot {}", s.id.short()));
        let tree = if same {
            c.copy_tree_as_is(&s.tree)?
        } else {
            c.rechunk_tree(&s.tree)?
        };
        let mut n = s.clone();
        n.tree = tree;
        if !same {
            n.parent = None;
        }
        to_write.push((s.id, n));
    }
    drop(c);
    let stats = saver.finish()?;
    dst.invalidate_index();
    report.blobs_added = stats.blobs_added;
    report.bytes_added_stored = stats.bytes_stored;
    for (old, snap) in to_write {
        dst.save_snapshot(&snap)?;
        report.copied.push((old, snap.id));
    }
    Ok(report)
}

struct Copier<'a> {
    src: &'a Repository,
    /// Reads the source's blobs, keeping its pack files open.
    reader: crate::repo::BlobReader<'a>,
    dst: &'a Repository,
    known: Known,
    saver: &'a BlobSaver,
    chunker: Chunker,
    /// Source tree id → destination tree id (re-chunking only).
    tree_map: IdMap<Id>,
    progress: &'a dyn Progress,
}

impl Copier<'_> {
    /// Move one blob as is (same chunking: ids are equal in both repositories).
    fn copy_blob(&mut self, kind: BlobKind, id: &Id) -> Result<()> {
        if self.known.check_and_mark(id) {
            return Ok(());
        }
        let plain = self.reader.read(kind, id)?;
        self.progress.inc(plain.len() as u64);
        self.saver.save(kind, *id, plain)
    }

    fn copy_tree_as_is(&mut self, root: &Id) -> Result<Id> {
        let mut stack = vec![*root];
        while let Some(t) = stack.pop() {
            if self.known.contains(&t) {
                // Already in the destination: so is everything below it.
                continue;
            }
            let tree = self.reader.load_tree(&t)?;
            for n in &tree.nodes {
                for id in &n.content {
                    self.copy_blob(BlobKind::Data, id)?;
                }
                if let Some(s) = n.subtree {
                    stack.push(s);
                }
            }
            self.copy_blob(BlobKind::Tree, &t)?;
        }
        Ok(*root)
    }

    fn rechunk_tree(&mut self, id: &Id) -> Result<Id> {
        if let Some(done) = self.tree_map.get(id) {
            return Ok(*done);
        }
        let mut tree = self.reader.load_tree(id)?;
        for n in &mut tree.nodes {
            if let Some(s) = n.subtree {
                n.subtree = Some(self.rechunk_tree(&s)?);
            }
            if n.kind == NodeKind::File && !n.content.is_empty() {
                n.content = self.rechunk_file(n)?;
            }
        }
        let bytes = tree.encode();
        let new_id = self.dst.key().blob_id(&bytes);
        if !self.known.check_and_mark(&new_id) {
            self.saver.save(BlobKind::Tree, new_id, bytes)?;
        }
        self.tree_map.insert(*id, new_id);
        Ok(new_id)
    }

    fn rechunk_file(&mut self, n: &Node) -> Result<Vec<Id>> {
        let index = self.src.index()?;
        // Split the chunk list by region (sparse files were cut region by region).
        let regions: Vec<u64> = match &n.extents {
            Some(ex) => ex.iter().map(|e| e.len).collect(),
            None => vec![u64::MAX],
        };
        let mut ids = n.content.iter().peekable();
        let mut out = Vec::new();
        let mut buf = Vec::new();
        for len in regions {
            let mut group = Vec::new();
            let mut sum = 0u64;
            while sum < len {
                let Some(id) = ids.next() else { break };
                let loc = index.get(id).ok_or_else(|| Error::BlobNotFound { id: id.to_hex() })?;
                sum += u64::from(loc.raw_len);
                group.push(*id);
            }
            let mut reader = ContentReader {
                blobs: &mut self.reader,
                ids: group.into_iter(),
                current: Vec::new(),
                pos: 0,
            };
            self.chunker.for_each_chunk(&mut reader, &mut buf, |chunk| {
                let id = self.dst.key().blob_id(chunk);
                out.push(id);
                if !self.known.check_and_mark(&id) {
                    self.saver.save(BlobKind::Data, id, chunk.to_vec())?;
                }
                self.progress.inc(chunk.len() as u64);
                Ok(())
            })?;
        }
        Ok(out)
    }
}

/// Reads the concatenated plaintext of a list of data blobs.
struct ContentReader<'a, 'r> {
    blobs: &'a mut crate::repo::BlobReader<'r>,
    ids: std::vec::IntoIter<Id>,
    current: Vec<u8>,
    pos: usize,
}

impl Read for ContentReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.current.len() {
            let Some(id) = self.ids.next() else { return Ok(0) };
            self.current = self
                .blobs
                .read(BlobKind::Data, &id)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            self.pos = 0;
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
