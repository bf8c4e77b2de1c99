//! Creating snapshots: walk the given paths, skip files whose metadata matches the parent
//! snapshot, cut the rest into chunks, store the chunks nobody stored before, and write one
//! tree per directory and finally the snapshot record.
//!
//! One thread walks ([`walk`]); reader threads read, cut and hash files ([`read`]); the
//! saver's worker threads compress and seal new chunks into packs and a writer thread writes
//! them. Memory is bounded by the segment buffers and packs in flight.

mod meta;
mod read;
mod walk;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use globset::{GlobSet, GlobSetBuilder};

use self::read::{Batch, ReadCtx, reader_thread};
use self::walk::{Walked, Walker};
use crate::chunker::Chunker;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::lock::Lock;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::saver::{BlobSaver, Known, adopt_unindexed_packs};
use crate::snapshot::Snapshot;

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
    // Reader threads read, cut and hash files while the walker lists directories and saves
    // each directory's tree once its files are read.
    let walked = std::thread::scope(|s| -> Result<_> {
        let readers = threads.max(1);
        let (jobs, job_rx) = crossbeam_channel::bounded::<Batch>(2 * readers);
        let (done_tx, done) = crossbeam_channel::unbounded();
        let handles: Vec<_> = (0..readers)
            .map(|_| {
                let (job_rx, done_tx, ctx) = (job_rx.clone(), done_tx.clone(), &ctx);
                s.spawn(move || reader_thread(ctx, &job_rx, &done_tx))
            })
            .collect();
        drop(done_tx);
        let mut walker = Walker::new(repo, &ctx, excludes, jobs, done);
        let root = walker.run(&paths, parent.as_ref().map(|p| &p.tree));
        // Dropping the walker closes the readers' queue, so they stop even after an error.
        let walked = walker.into_walked();
        let joined: Vec<Result<()>> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::corrupt("snapshot create", "a file reader panicked")))
            })
            .collect();
        let root = root?;
        joined.into_iter().collect::<Result<()>>()?;
        Ok((root, walked))
    });
    progress.finish();
    let (root, walked) = match walked {
        Ok(w) => w,
        // A saver that stopped says why when it finishes.
        Err(e) => return Err(saver.finish().err().unwrap_or(e)),
    };
    let Walked {
        mut summary,
        stored_before,
        warnings,
    } = walked;
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
