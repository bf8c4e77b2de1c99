//! Storing new blobs: worker threads compress and seal blobs into packs, write each finished
//! pack, and record it in index files written every few packs. A pack is always on disk
//! before an index names it, and an index before a snapshot needs it, so a writer killed at
//! any instant leaves only unreferenced packs (which prune removes) and index entries that the
//! next run reuses.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::backend::{FileKind, LocalBackend, sync_dir, sync_file, write_atomic_unsynced};
use crate::crypto::Cipher;
use crate::error::{Error, Result};
use crate::id::{Id, IdMap};
use crate::index::{IndexFile, IndexPack};
use crate::pack::{BlobKind, PackEntry, PackWriter};
use crate::repo::Repository;

/// Write an index file after this many packs, or after [`INDEX_FLUSH_EVERY`].
const INDEX_FLUSH_PACKS: usize = 4;
const INDEX_FLUSH_EVERY: Duration = Duration::from_secs(10);

enum Job {
    Plain {
        kind: BlobKind,
        id: Id,
        data: Vec<u8>,
    },
    Sealed {
        kind: BlobKind,
        id: Id,
        raw_len: u32,
        compressed: bool,
        sealed: Vec<u8>,
    },
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
    /// Buffers of stored packs, handed back to the workers so memory is reused, not regrown.
    spare: Mutex<Vec<Vec<u8>>>,
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

/// A finished pack on its way to disk.
type FinishedPack = (Id, Vec<u8>, Vec<PackEntry>);

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
            spare: Mutex::new(Vec::new()),
        });
        let threads = threads.max(1);
        let (tx, rx) = bounded::<Job>(threads * 8);
        // One finished pack may wait while the writer syncs, so a sync does not stall the
        // workers; a slow disk holds at most two packs beyond those being filled.
        let (ptx, prx) = bounded::<FinishedPack>(1);
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
            for (id, bytes, entries) in prx {
                store_pack(&writer_shared, id, bytes, entries)?;
            }
            Ok(())
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
        self.send(Job::Plain { kind, id, data })
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
        let mut first_err = None;
        let writer = self.writer.take();
        for w in self.workers.drain(..).chain(writer) {
            match w.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(Error::corrupt("blob saver", "a worker panicked"));
                }
            }
        }
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

fn worker(rx: Receiver<Job>, packs: Sender<FinishedPack>, shared: Arc<Shared>) -> Result<()> {
    let mut compressor = if shared.compression > 0 {
        Some(zstd::bulk::Compressor::new(shared.compression)?)
    } else {
        None
    };
    // Pack buffers are sized once for a full pack and then reused: growing them by doubling
    // would leave freed copies behind in every thread's allocator arena.
    let capacity = shared.pack_size + (1 << 20);
    let fresh = || PackWriter::with_buffer(Vec::with_capacity(capacity));
    let mut data_pack = fresh();
    let mut tree_pack = PackWriter::default();
    for job in rx {
        let kind = match &job {
            Job::Plain { kind, .. } | Job::Sealed { kind, .. } => *kind,
        };
        let pack = if kind == BlobKind::Data {
            &mut data_pack
        } else {
            &mut tree_pack
        };
        let (raw, stored) = match job {
            Job::Plain { kind, id, data } => {
                let stored = pack.add(kind, id, &data, compressor.as_mut(), &shared.cipher)?;
                (data.len() as u64, u64::from(stored))
            }
            Job::Sealed {
                kind,
                id,
                raw_len,
                compressed,
                sealed,
            } => {
                pack.add_sealed(kind, id, raw_len, compressed, &sealed);
                (u64::from(raw_len), sealed.len() as u64)
            }
        };
        shared.blobs_added.fetch_add(1, Ordering::Relaxed);
        shared.bytes_added.fetch_add(raw, Ordering::Relaxed);
        shared.bytes_stored.fetch_add(stored, Ordering::Relaxed);
        if pack.len() >= shared.pack_size {
            let spare = shared.spare.lock().expect("spare lock").pop();
            let next = spare.map_or_else(fresh, PackWriter::with_buffer);
            let full = std::mem::replace(pack, next);
            send_pack(&packs, full.finish(&shared.cipher)?)?;
        }
    }
    for pack in [data_pack, tree_pack] {
        if !pack.is_empty() {
            send_pack(&packs, pack.finish(&shared.cipher)?)?;
        }
    }
    Ok(())
}

fn send_pack(packs: &Sender<FinishedPack>, pack: FinishedPack) -> Result<()> {
    packs
        .send(pack)
        .map_err(|_| Error::corrupt("pack writer", "stopped early; see the error that follows"))
}

fn store_pack(shared: &Shared, id: Id, bytes: Vec<u8>, entries: Vec<PackEntry>) -> Result<()> {
    let path = shared.backend.path(FileKind::Pack, &id.to_hex());
    write_atomic_unsynced(&path, &bytes)?;
    let size = bytes.len() as u64;
    {
        let mut spare = shared.spare.lock().expect("spare lock");
        if spare.len() < 2 {
            spare.push(bytes);
        }
    }
    {
        let mut pending = shared.pending.lock().expect("index lock");
        pending.packs.push(IndexPack {
            id,
            size,
            blobs: entries,
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
    let mut dirs = std::collections::BTreeSet::new();
    for p in pending.unsynced.drain(..) {
        sync_file(&p)?;
        if let Some(d) = p.parent() {
            dirs.insert(d.to_path_buf());
        }
    }
    for d in dirs {
        sync_dir(&d)?;
    }
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
