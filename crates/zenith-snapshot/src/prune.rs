//! Removing data no snapshot uses. Prune first computes a plain plan (which packs to keep,
//! delete or repack), then carries it out under an exclusive lock in an order that is safe to
//! interrupt: new packs, then a complete new index, then removal of old index files, and only
//! then removal of old packs.

use std::time::Duration;

use serde::Serialize;

use crate::backend::FileKind;
use crate::error::{Error, Result};
use crate::id::{Id, IdSet};
use crate::index::{IndexFile, IndexPack};
use crate::lock::Lock;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::saver::{BlobSaver, read_pack_header, write_index_file};

/// Choices for prune.
#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// Repack a pack when more than this share of its bytes is unused (0.0–1.0).
    pub max_unused: f64,
    pub dry_run: bool,
    pub lock_wait: Duration,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            max_unused: 0.10,
            dry_run: false,
            lock_wait: Duration::ZERO,
        }
    }
}

/// What prune will do (or did).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PrunePlan {
    pub snapshots: usize,
    pub packs_total: usize,
    pub packs_keep: usize,
    pub packs_delete: Vec<Id>,
    pub packs_repack: Vec<Id>,
    /// Packs on disk that no index names.
    pub packs_unindexed: Vec<Id>,
    pub blobs_used: usize,
    pub blobs_unused: usize,
    pub bytes_total: u64,
    pub bytes_unused: u64,
    /// Bytes that go away (deleted packs plus the unused part of repacked ones).
    pub bytes_freed: u64,
    pub bytes_repacked: u64,
    pub index_files: usize,
}

impl PrunePlan {
    pub fn is_noop(&self) -> bool {
        self.packs_delete.is_empty() && self.packs_repack.is_empty() && self.packs_unindexed.is_empty()
    }
}

/// Every blob referenced by `snapshots` (their trees and the data they list).
pub fn used_blobs(repo: &Repository, roots: impl IntoIterator<Item = Id>, progress: &dyn Progress) -> Result<IdSet> {
    let mut used = IdSet::default();
    let mut stack: Vec<Id> = roots.into_iter().collect();
    while let Some(t) = stack.pop() {
        if !used.insert(t) {
            continue;
        }
        progress.inc(1);
        let tree = repo.load_tree(&t).map_err(|e| {
            Error::corrupt(
                format!("tree {t}"),
                format!(
                    "{e}; refusing to prune a repository whose trees cannot all be read (run `zenith snapshot verify`)"
                ),
            )
        })?;
        for n in tree.nodes {
            if let Some(s) = n.subtree {
                stack.push(s);
            }
            used.extend(n.content);
        }
    }
    Ok(used)
}

/// Compute and (unless `dry_run`) carry out a prune.
pub fn prune(repo: &Repository, opts: &PruneOptions, progress: &dyn Progress) -> Result<PrunePlan> {
    let _lock = Lock::acquire(repo.backend(), true, "snapshot prune", opts.lock_wait)?;
    prune_locked(repo, opts, progress)
}

/// Prune while the caller already holds the exclusive lock.
pub fn prune_locked(repo: &Repository, opts: &PruneOptions, progress: &dyn Progress) -> Result<PrunePlan> {
    let snapshots = repo.snapshots()?;
    progress.start("finding used data", None);
    let used = used_blobs(repo, snapshots.iter().map(|s| s.tree), progress)?;
    let index_files = repo.load_index_files()?;

    let mut plan = PrunePlan {
        snapshots: snapshots.len(),
        index_files: index_files.len(),
        ..Default::default()
    };
    // The first copy of each used blob is the one kept.
    let mut owned = IdSet::default();
    let mut seen_packs = IdSet::default();
    let mut keep: Vec<IndexPack> = Vec::new();
    let mut repack: Vec<IndexPack> = Vec::new();
    for (_, file) in &index_files {
        for p in &file.packs {
            if !seen_packs.insert(p.id) {
                continue;
            }
            plan.packs_total += 1;
            plan.bytes_total += p.size;
            let mut used_bytes = 0u64;
            let mut used_count = 0;
            for b in &p.blobs {
                if used.contains(&b.id) && owned.insert(b.id) {
                    used_bytes += u64::from(b.length);
                    used_count += 1;
                } else {
                    plan.blobs_unused += 1;
                }
            }
            plan.blobs_used += used_count;
            let unused = p.size.saturating_sub(used_bytes);
            plan.bytes_unused += unused;
            if used_count == 0 {
                plan.packs_delete.push(p.id);
                plan.bytes_freed += p.size;
            } else if unused as f64 > opts.max_unused * p.size as f64 && used_count < p.blobs.len() {
                plan.packs_repack.push(p.id);
                plan.bytes_freed += unused;
                plan.bytes_repacked += used_bytes;
                repack.push(p.clone());
            } else {
                plan.packs_keep += 1;
                keep.push(p.clone());
            }
        }
    }
    let missing: Vec<Id> = used.iter().filter(|id| !owned.contains(id)).copied().collect();
    if let Some(id) = missing.first() {
        return Err(Error::corrupt(
            format!("blob {id}"),
            format!(
                "{} blobs used by snapshots are in no index; refusing to prune (run `zenith snapshot verify`)",
                missing.len()
            ),
        ));
    }
    for f in repo.backend().list(FileKind::Pack)? {
        if let Ok(id) = f.name.parse::<Id>()
            && !seen_packs.contains(&id)
        {
            plan.packs_unindexed.push(id);
            plan.bytes_freed += f.size;
        }
    }
    if opts.dry_run || plan.is_noop() {
        return Ok(plan);
    }

    // 1. Copy the used blobs of partly used packs into new packs.
    let mut new_index_files = Vec::new();
    let mut new_packs: Vec<IndexPack> = Vec::new();
    if !repack.is_empty() {
        progress.start("repacking", Some(plan.bytes_repacked));
        let saver = BlobSaver::new(repo, 1);
        // Blobs a kept pack already holds need no copy; others are copied once.
        let mut kept: IdSet = keep.iter().flat_map(|k| k.blobs.iter().map(|b| b.id)).collect();
        for p in &repack {
            let bytes = repo.backend().read(FileKind::Pack, &p.id.to_hex())?;
            for b in &p.blobs {
                if !used.contains(&b.id) || !kept.insert(b.id) {
                    continue;
                }
                let sealed = bytes
                    .get(b.offset as usize..(b.offset + b.length) as usize)
                    .ok_or_else(|| Error::corrupt(format!("pack {}", p.id), "blob beyond end"))?;
                // Never carry damage forward.
                crate::pack::open_blob(
                    sealed,
                    b.kind,
                    &b.id,
                    b.compressed,
                    b.raw_len,
                    repo.cipher(),
                    repo.key(),
                )?;
                saver.save_sealed(b.kind, b.id, b.raw_len, b.compressed, sealed.to_vec())?;
                progress.inc(u64::from(b.length));
            }
        }
        let stats = saver.finish()?;
        for name in &stats.index_files {
            let bytes = repo.backend().read(FileKind::Index, name)?;
            new_packs.extend(IndexFile::open(&bytes, repo.cipher(), name)?.packs);
        }
        new_index_files = stats.index_files;
    }

    // 2. One complete index of everything kept.
    let mut all = keep;
    all.extend(new_packs);
    let consolidated = write_index_file(repo.backend(), repo.cipher(), &IndexFile { packs: all })?;

    // 3. Old index files go (the new one covers everything they named that is kept).
    for (name, _) in &index_files {
        if *name != consolidated {
            repo.backend().remove(FileKind::Index, name)?;
        }
    }
    for name in &new_index_files {
        if *name != consolidated {
            repo.backend().remove(FileKind::Index, name)?;
        }
    }

    // 4. Finally the packs.
    for id in plan
        .packs_delete
        .iter()
        .chain(&plan.packs_repack)
        .chain(&plan.packs_unindexed)
    {
        repo.backend().remove(FileKind::Pack, &id.to_hex())?;
    }
    repo.backend().remove_stale_temp_files(Duration::from_secs(24 * 3600))?;
    repo.invalidate_index();
    Ok(plan)
}

/// Rebuild the index from the pack headers alone (after index files were lost or damaged).
pub fn rebuild_index(repo: &Repository, lock_wait: Duration, progress: &dyn Progress) -> Result<usize> {
    let _lock = Lock::acquire(repo.backend(), true, "repo rebuild-index", lock_wait)?;
    let listed = repo.backend().list(FileKind::Pack)?;
    progress.start("reading pack headers", Some(listed.len() as u64));
    let mut packs = Vec::new();
    for f in &listed {
        let Ok(id) = f.name.parse::<Id>() else { continue };
        match read_pack_header(repo.backend(), repo.cipher(), &f.name, f.size) {
            Ok(blobs) => packs.push(IndexPack {
                id,
                size: f.size,
                blobs,
            }),
            Err(e) => progress.warn(&format!("pack {}: {e}; left out of the index", f.name)),
        }
        progress.inc(1);
    }
    let n = packs.len();
    repo.invalidate_index();
    let old = repo.backend().list(FileKind::Index)?;
    let name = write_index_file(repo.backend(), repo.cipher(), &IndexFile { packs })?;
    for f in old {
        if f.name != name {
            repo.backend().remove(FileKind::Index, &f.name)?;
        }
    }
    Ok(n)
}
