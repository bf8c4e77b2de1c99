//! Storing new blobs: worker threads compress and seal blobs into packs, write each finished
//! pack, and record it in index files written every few packs. A pack is always on disk
//! before an index names it, and an index before a snapshot needs it, so a writer killed at
//! any instant leaves only unreferenced packs (which prune removes) and index entries that the
//! next run reuses.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use crate::backend::{FileKind, LocalBackend, create_private, sync_dir, sync_file};
use crate::crypto::Cipher;
use crate::direct::{BLOCK, DirectWriter};
use crate::error::{Error, Result};
use crate::id::{Id, IdMap};
use crate::index::{IndexFile, IndexPack};
use crate::pack::{BlobKind, BlobSealer, PackEntry, PackWriter};
use crate::repo::Repository;

/// Write an index file after this many packs, or after [`INDEX_FLUSH_EVERY`].
const INDEX_FLUSH_PACKS: usize = 4;
const INDEX_FLUSH_EVERY: Duration = Duration::from_secs(10);

enum Job {
    Blobs(Segment),
    Sealed {
        kind: BlobKind,
        id: Id,
        raw_len: u32,
        compressed: bool,
        sealed: Vec<u8>,
    },
}

/// Blobs to store, cut from one buffer: the file readers hand new chunks over a segment at a
/// time (about a MiB, many small files' chunks together), not one chunk at a time.
pub struct Segment {
    data: Vec<u8>,
    blobs: Vec<SegmentBlob>,
}

struct SegmentBlob {
    kind: BlobKind,
    id: Id,
    start: usize,
    len: usize,
}

impl Segment {
    /// The buffer, to fill (its length is fixed, so it is reused without re-zeroing).
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Mark `data[start..start + len]` as a blob to store.
    pub fn push(&mut self, kind: BlobKind, id: Id, start: usize, len: usize) {
        debug_assert!(start + len <= self.data.len());
        self.blobs.push(SegmentBlob { kind, id, start, len });
    }

    /// True when no blob is marked.
    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }
}

/// Size of the segment buffers readers fill (at least two of the largest chunks).
fn segment_size(max_chunk: usize) -> usize {
    (2 * max_chunk).max(1 << 20)
}

struct Shared {
    backend: LocalBackend,
    cipher: Cipher,
    compression: i32,
    pack_size: usize,
    pending: Mutex<Pending>,
    blobs_added: AtomicU64,
    bytes_added: AtomicU64,
    bytes_stored: AtomicU64,
    /// Segment buffers the workers are done with, for the readers to fill again.
    segments: Mutex<Vec<Vec<u8>>>,
    segment_size: usize,
}

struct Pending {
    packs: Vec<IndexPack>,
    /// Packs written but not yet synced; synced before an index names them.
    unsynced: Vec<std::path::PathBuf>,
    last_flush: Instant,
    index_files: Vec<String>,
}

/// What a saver stored.
#[derive(Clone, Debug, Default)]
pub struct SaveStats {
    pub blobs_added: u64,
    pub bytes_added: u64,
    pub bytes_stored: u64,
    pub index_files: Vec<String>,
}

/// A pool of workers that store blobs into packs.
pub struct BlobSaver {
    tx: Option<Sender<Job>>,
    workers: Vec<JoinHandle<Result<()>>>,
    /// Writes finished packs, so compression never waits for the disk.
    writer: Option<JoinHandle<Result<()>>>,
    shared: Arc<Shared>,
}

/// A pack written to a temporary file, on its way to its name and an index.
struct FinishedPack {
    tmp: PathBuf,
    id: Id,
    size: u64,
    entries: Vec<PackEntry>,
}

impl BlobSaver {
    pub fn new(repo: &Repository, threads: usize) -> BlobSaver {
        let shared = Arc::new(Shared {
            backend: repo.backend().clone(),
            cipher: repo.cipher().clone(),
            compression: repo.config().compression,
            pack_size: repo.config().pack_size as usize,
            pending: Mutex::new(Pending {
                packs: Vec::new(),
                unsynced: Vec::new(),
                last_flush: Instant::now(),
                index_files: Vec::new(),
            }),
            blobs_added: AtomicU64::new(0),
            bytes_added: AtomicU64::new(0),
            bytes_stored: AtomicU64::new(0),
            segments: Mutex::new(Vec::new()),
            segment_size: segment_size(repo.config().chunker.max as usize),
        });
        let threads = threads.max(1);
        let (tx, rx) = bounded::<Job>(threads * 2);
        // Finished packs are already in files: the writer names, syncs and indexes them, and
        // a sync never stalls the workers.
        let (ptx, prx) = unbounded::<FinishedPack>();
        let workers = (0..threads)
            .map(|_| {
                let rx = rx.clone();
                let ptx = ptx.clone();
                let shared = shared.clone();
                std::thread::spawn(move || worker(rx, ptx, shared))
            })
            .collect();
        let writer_shared = shared.clone();
        let writer = std::thread::spawn(move || {
            let mut result = Ok(());
            for pack in prx {
                if result.is_ok() {
                    result = store_pack(&writer_shared, pack);
                } else {
                    // After a failure, packs still coming are not kept: their temporary files go.
                    let _ = std::fs::remove_file(&pack.tmp);
                }
            }
            result
        });
        BlobSaver {
            tx: Some(tx),
            workers,
            writer: Some(writer),
            shared,
        }
    }

    /// Queue a blob for storage. The caller has already made sure it is new.
    pub fn save(&self, kind: BlobKind, id: Id, data: Vec<u8>) -> Result<()> {
        let len = data.len();
        let mut segment = Segment {
            data,
            blobs: Vec::with_capacity(1),
        };
        segment.push(kind, id, 0, len);
        self.send(Job::Blobs(segment))
    }

    /// An empty segment whose buffer is [`segment_size`] bytes long.
    pub fn segment(&self) -> Segment {
        let data = self.shared.segments.lock().expect("segment pool").pop();
        Segment {
            data: data.unwrap_or_else(|| vec![0; self.shared.segment_size]),
            blobs: Vec::new(),
        }
    }

    /// Queue the blobs a segment marks for storage; the caller has made sure each is new.
    pub fn save_segment(&self, segment: Segment) -> Result<()> {
        if segment.is_empty() {
            self.shared.recycle(segment.data);
            return Ok(());
        }
        self.send(Job::Blobs(segment))
    }

    /// Queue an already sealed blob (copied from a repository with the same keys' chunking).
    pub fn save_sealed(&self, kind: BlobKind, id: Id, raw_len: u32, compressed: bool, sealed: Vec<u8>) -> Result<()> {
        self.send(Job::Sealed {
            kind,
            id,
            raw_len,
            compressed,
            sealed,
        })
    }

    fn send(&self, job: Job) -> Result<()> {
        let tx = self.tx.as_ref().expect("saver used after finish");
        if tx.send(job).is_err() {
            // Every worker has stopped: one failed, and `finish` reports why.
            return Err(Error::corrupt(
                "blob saver",
                "all workers stopped; see the error that follows",
            ));
        }
        Ok(())
    }

    /// Bytes stored so far (for progress).
    pub fn bytes_stored(&self) -> u64 {
        self.shared.bytes_stored.load(Ordering::Relaxed)
    }

    /// Wait for every queued blob to be stored and indexed.
    pub fn finish(mut self) -> Result<SaveStats> {
        drop(self.tx.take());
        let joined = |w: JoinHandle<Result<()>>| {
            w.join()
                .unwrap_or_else(|_| Err(Error::corrupt("blob saver", "a worker panicked")))
        };
        let workers: Vec<Result<()>> = self.workers.drain(..).map(joined).collect();
        let writer = self.writer.take().map_or(Ok(()), joined);
        // The writer's error first: workers that lost the writer only say it stopped.
        let first_err = writer.err().or_else(|| workers.into_iter().find_map(Result::err));
        // Index what was written even on error, so the next run reuses it.
        let flushed = flush_index(&self.shared, true);
        if let Some(e) = first_err {
            return Err(e);
        }
        flushed?;
        let pending = self.shared.pending.lock().expect("index lock");
        Ok(SaveStats {
            blobs_added: self.shared.blobs_added.load(Ordering::Relaxed),
            bytes_added: self.shared.bytes_added.load(Ordering::Relaxed),
            bytes_stored: self.shared.bytes_stored.load(Ordering::Relaxed),
            index_files: pending.index_files.clone(),
        })
    }
}

impl Drop for BlobSaver {
    fn drop(&mut self) {
        drop(self.tx.take());
        let writer = self.writer.take();
        for w in self.workers.drain(..).chain(writer) {
            let _ = w.join();
        }
        let _ = flush_index(&self.shared, true);
    }
}

impl Shared {
    fn count(&self, raw: u64, stored: u64) {
        self.blobs_added.fetch_add(1, Ordering::Relaxed);
        self.bytes_added.fetch_add(raw, Ordering::Relaxed);
        self.bytes_stored.fetch_add(stored, Ordering::Relaxed);
    }

    /// Keep a segment buffer for reuse (only the standard size; a few are enough).
    fn recycle(&self, data: Vec<u8>) {
        if data.len() == self.segment_size {
            let mut pool = self.segments.lock().expect("segment pool");
            if pool.len() < 16 {
                pool.push(data);
            }
        }
    }
}

fn worker(rx: Receiver<Job>, packs: Sender<FinishedPack>, shared: Arc<Shared>) -> Result<()> {
    let mut sealer = BlobSealer::new(shared.compression)?;
    let mut data_pack = StreamedPack::default();
    let mut tree_pack = StreamedPack::default();
    let result = (|| -> Result<()> {
        for job in &rx {
            match job {
                Job::Blobs(segment) => {
                    for b in &segment.blobs {
                        let pack = pack_for(b.kind, &mut data_pack, &mut tree_pack);
                        let plain = &segment.data[b.start..b.start + b.len];
                        let stored = pack.pack.add(b.kind, b.id, plain, &mut sealer, &shared.cipher)?;
                        shared.count(b.len as u64, u64::from(stored));
                        pack.grown(&shared, &packs)?;
                    }
                    shared.recycle(segment.data);
                }
                Job::Sealed {
                    kind,
                    id,
                    raw_len,
                    compressed,
                    sealed,
                } => {
                    let pack = pack_for(kind, &mut data_pack, &mut tree_pack);
                    pack.pack.add_sealed(kind, id, raw_len, compressed, &sealed);
                    shared.count(u64::from(raw_len), sealed.len() as u64);
                    pack.grown(&shared, &packs)?;
                }
            }
        }
        for pack in [&mut data_pack, &mut tree_pack] {
            if !pack.pack.is_empty() {
                pack.ship(&shared, &packs)?;
            }
        }
        Ok(())
    })();
    if result.is_err() {
        data_pack.discard();
        tree_pack.discard();
    }
    result
}

/// Data and trees go to packs of their own, so reading trees touches few packs.
fn pack_for<'p>(kind: BlobKind, data: &'p mut StreamedPack, trees: &'p mut StreamedPack) -> &'p mut StreamedPack {
    match kind {
        BlobKind::Data => data,
        BlobKind::Tree => trees,
    }
}

/// Bytes a worker gathers before writing them to its pack's file.
const SPILL: usize = 1 << 20;

/// A pack being filled by one worker and written to a temporary file as it grows, so a worker
/// holds about a MiB of it in memory, not the whole pack. Whole blocks are written around the
/// page cache ([`crate::direct`]); the pack's hash is computed on the way.
#[derive(Default)]
struct StreamedPack {
    pack: PackWriter,
    file: Option<(PathBuf, DirectWriter)>,
    /// Memory for direct writes, kept from one pack to the next.
    staging: Vec<u8>,
}

impl StreamedPack {
    /// After a blob was added: write out what has gathered, and ship the pack once full.
    fn grown(&mut self, shared: &Shared, packs: &Sender<FinishedPack>) -> Result<()> {
        if self.pack.len() >= shared.pack_size {
            return self.ship(shared, packs);
        }
        if self.pack.pending() >= SPILL {
            // Whole blocks only, so every direct write starts at an aligned offset.
            let n = self.pack.pending() / BLOCK * BLOCK;
            let offset = self.pack.taken();
            self.open(shared)?;
            let (path, file) = self.file.as_mut().expect("the pack's file is open");
            self.pack.take_bytes(n, |bytes| {
                file.write_at(bytes, offset).map_err(|e| Error::io_at(&*path, e))
            })?;
        }
        Ok(())
    }

    /// Make the pack's temporary file if it has none yet.
    fn open(&mut self, shared: &Shared) -> Result<()> {
        if self.file.is_none() {
            let path = shared.backend.temp_path(FileKind::Pack);
            let writer = DirectWriter::new(create_private(&path)?, &path, std::mem::take(&mut self.staging));
            self.file = Some((path, writer));
        }
        Ok(())
    }

    /// Finish the pack and hand it to the writer; start the next one.
    fn ship(&mut self, shared: &Shared, packs: &Sender<FinishedPack>) -> Result<()> {
        let pack = std::mem::take(&mut self.pack);
        let offset = pack.taken();
        let (id, tail, entries) = pack.finish(&shared.cipher)?;
        let size = offset + tail.len() as u64;
        self.open(shared)?;
        let (tmp, mut file) = self.file.take().expect("the pack's file is open");
        let written = file.write_at(&tail, offset);
        self.staging = file.into_staging();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::io_at(&tmp, e));
        }
        // The buffer's memory stays with the worker for the next pack.
        self.pack = PackWriter::with_buffer(tail);
        packs.send(FinishedPack { tmp, id, size, entries }).map_err(|failed| {
            let _ = std::fs::remove_file(&failed.0.tmp);
            Error::corrupt("pack writer", "stopped early; see the error that follows")
        })
    }

    /// Remove the temporary file of a pack that will not be finished.
    fn discard(&mut self) {
        if let Some((path, _)) = self.file.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Give a written pack its name and record it for the next index file.
fn store_pack(shared: &Shared, pack: FinishedPack) -> Result<()> {
    let path = shared.backend.path(FileKind::Pack, &pack.id.to_hex());
    if let Err(e) = std::fs::rename(&pack.tmp, &path) {
        let _ = std::fs::remove_file(&pack.tmp);
        return Err(Error::io_at(&path, e));
    }
    {
        let mut pending = shared.pending.lock().expect("index lock");
        pending.packs.push(IndexPack {
            id: pack.id,
            size: pack.size,
            blobs: pack.entries,
        });
        pending.unsynced.push(path);
    }
    flush_index(shared, false)
}

/// Write pending pack records to a new index file when enough have gathered (or `force`).
fn flush_index(shared: &Shared, force: bool) -> Result<()> {
    let mut pending = shared.pending.lock().expect("index lock");
    let due = pending.packs.len() >= INDEX_FLUSH_PACKS || pending.last_flush.elapsed() >= INDEX_FLUSH_EVERY;
    if pending.packs.is_empty() || !(force || due) {
        return Ok(());
    }
    // Packs reach the disk before the index that names them.
    // A failed sync leaves every pack unsynced (and unindexed), so no later flush can name a
    // pack that is not on disk.
    let mut dirs = std::collections::BTreeSet::new();
    for p in &pending.unsynced {
        sync_file(p)?;
        if let Some(d) = p.parent() {
            dirs.insert(d.to_path_buf());
        }
    }
    for d in dirs {
        sync_dir(&d)?;
    }
    pending.unsynced.clear();
    let file = IndexFile {
        packs: std::mem::take(&mut pending.packs),
    };
    let name = write_index_file(&shared.backend, &shared.cipher, &file)?;
    pending.index_files.push(name);
    pending.last_flush = Instant::now();
    Ok(())
}

/// Seal and store an index file; returns its name.
pub fn write_index_file(backend: &LocalBackend, cipher: &Cipher, file: &IndexFile) -> Result<String> {
    let bytes = file.seal(cipher)?;
    let name = Id::hash(&bytes).to_hex();
    backend.write(FileKind::Index, &name, &bytes)?;
    Ok(name)
}

/// Index the packs a killed writer left unindexed, so this run may reuse their blobs; returns
/// them (already written to a new index file).
pub fn adopt_unindexed_packs(repo: &Repository, known: &crate::index::Index) -> Result<Vec<IndexPack>> {
    let recovered = recover_unindexed_packs(repo, known)?;
    if !recovered.is_empty() {
        let file = IndexFile {
            packs: recovered.clone(),
        };
        write_index_file(repo.backend(), repo.cipher(), &file)?;
    }
    Ok(recovered)
}

/// Packs on disk that no index names (left by a writer killed before it indexed them): read
/// their headers so their blobs can be reused and indexed. Damaged ones are skipped (verify
/// reports them; prune removes them).
pub fn recover_unindexed_packs(repo: &Repository, known: &crate::index::Index) -> Result<Vec<IndexPack>> {
    let mut found = Vec::new();
    for f in repo.backend().list(FileKind::Pack)? {
        let Ok(id) = f.name.parse::<Id>() else { continue };
        if known.has_pack(&id) {
            continue;
        }
        if let Ok(blobs) = read_pack_header(repo.backend(), repo.cipher(), &f.name, f.size) {
            found.push(IndexPack {
                id,
                size: f.size,
                blobs,
            });
        }
    }
    Ok(found)
}

/// Read and parse a pack's header from the end of its file.
pub fn read_pack_header(backend: &LocalBackend, cipher: &Cipher, name: &str, size: u64) -> Result<Vec<PackEntry>> {
    let guess = (crate::pack::HEADER_GUESS as u64).min(size);
    let tail = backend.read_at(FileKind::Pack, name, size - guess, guess as usize)?;
    let hlen = if tail.len() >= 4 {
        u64::from(u32::from_le_bytes(
            tail[tail.len() - 4..].try_into().unwrap_or_default(),
        ))
    } else {
        0
    };
    if hlen + 4 > guess && hlen + 4 <= size {
        let tail = backend.read_at(FileKind::Pack, name, size - hlen - 4, (hlen + 4) as usize)?;
        return crate::pack::parse_header(&tail, size, cipher, name);
    }
    crate::pack::parse_header(&tail, size, cipher, name)
}

/// Tracks which blobs exist or are on their way, so each is stored once per run.
pub struct Known {
    index: Arc<crate::index::Index>,
    /// Blobs not in the loaded index: recovered from unindexed packs (with their stored
    /// length) or queued by this run (`None`).
    extra: Mutex<IdMap<Option<u64>>>,
}

impl Known {
    pub fn new(index: Arc<crate::index::Index>, recovered: &[IndexPack]) -> Known {
        let mut extra = IdMap::default();
        for p in recovered {
            for b in &p.blobs {
                extra.insert(b.id, Some(u64::from(b.length)));
            }
        }
        Known {
            index,
            extra: Mutex::new(extra),
        }
    }

    /// Stored size of a blob that was in the repository before this run, if it was.
    pub fn stored_len(&self, id: &Id) -> Option<u64> {
        match self.index.get(id) {
            Some(l) => Some(u64::from(l.length)),
            None => self.extra.lock().expect("known lock").get(id).copied().flatten(),
        }
    }

    /// True if the blob is already stored or queued; otherwise marks it queued and returns false.
    pub fn check_and_mark(&self, id: &Id) -> bool {
        if self.index.contains(id) {
            return true;
        }
        let mut extra = self.extra.lock().expect("known lock");
        if extra.contains_key(id) {
            return true;
        }
        extra.insert(*id, None);
        false
    }

    pub fn contains(&self, id: &Id) -> bool {
        self.index.contains(id) || self.extra.lock().expect("known lock").contains_key(id)
    }
}
