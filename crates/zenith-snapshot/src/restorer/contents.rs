//! Writing restored files' contents with several threads. Small files are created, written
//! and finished (owner, mode, xattrs, times) by one thread through one descriptor; large ones
//! are cut into parts that threads decode at the same time. Each piece is decoded first and
//! then written with one vectored write per run of adjacent chunks (long runs around the page
//! cache), and only one thread at a time writes into a given file: the kernel serializes
//! writes to one file anyway (ext4 holds the inode lock), with the waiting thread spinning on
//! a CPU the others could use.

use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{create_file, set_meta_fd};
use crate::direct::{DirectWriter, write_all_vectored_at};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::pack::BlobKind;
use crate::progress::Progress;
use crate::repo::{BlobReader, Repository};
use crate::tree::Node;

/// Pieces of work for the writer threads: up to this many chunks of one file, and no more
/// bytes than [`PART_BYTES`] (beyond one chunk).
const PART_CHUNKS: usize = 64;
const PART_BYTES: u64 = 8 << 20;

/// Where the parts of a file's chunks begin: consecutive runs of up to [`PART_CHUNKS`] chunks
/// and [`PART_BYTES`] bytes. A file of more than one part is written by several threads.
pub(super) fn part_starts(chunks: &[(u64, Id, u32)]) -> Vec<usize> {
    let mut starts = vec![0];
    let (mut n, mut bytes) = (0, 0u64);
    for (i, c) in chunks.iter().enumerate() {
        if n > 0 && (n == PART_CHUNKS || bytes + u64::from(c.2) > PART_BYTES) {
            starts.push(i);
            (n, bytes) = (0, 0);
        }
        n += 1;
        bytes += u64::from(c.2);
    }
    starts
}

/// One file's contents to write.
pub(super) struct FileJob {
    pub path: PathBuf,
    pub rel: PathBuf,
    pub node: Node,
    /// (offset, chunk id, length).
    pub chunks: Vec<(u64, Id, u32)>,
    /// Created during the walk because several workers write parts of it; its metadata is
    /// set at the end, by path. Other files are created, written and finished by one worker.
    pub shared: bool,
    /// Held while writing into a shared file.
    pub writing: Mutex<()>,
}

/// A piece of work for a writer thread.
#[derive(Clone, Copy)]
enum Unit {
    /// Create, write and finish a whole file.
    Whole(usize),
    /// Write chunks `from..to` of a shared file.
    Part(usize, usize, usize),
}

/// The work in the order the threads take it: the parts of each large file interleaved with
/// the other large files' parts and with the small files, so that threads taking consecutive
/// units mostly write into different files.
fn units(jobs: &[FileJob]) -> Vec<Unit> {
    let mut streams: Vec<Vec<Unit>> = Vec::new();
    let mut small = Vec::new();
    for (i, j) in jobs.iter().enumerate() {
        if j.shared {
            let starts = part_starts(&j.chunks);
            let ends = starts.iter().skip(1).copied().chain([j.chunks.len()]);
            streams.push(starts.iter().zip(ends).map(|(&s, e)| Unit::Part(i, s, e)).collect());
        } else {
            small.push(Unit::Whole(i));
        }
    }
    // Small files go in runs as long as a part, so they are not scattered one by one.
    let mut out = Vec::with_capacity(small.len() + streams.iter().map(Vec::len).sum::<usize>());
    let mut iters: Vec<_> = streams.into_iter().map(Vec::into_iter).collect();
    let mut small = small.into_iter();
    loop {
        let before = out.len();
        out.extend(iters.iter_mut().filter_map(Iterator::next));
        let mut chunks = 0;
        while chunks < PART_CHUNKS {
            let Some(u) = small.next() else { break };
            if let Unit::Whole(i) = u {
                chunks += jobs[i].chunks.len().max(1);
            }
            out.push(u);
        }
        if out.len() == before {
            return out;
        }
    }
}

/// Write every file's contents with `threads` workers; returns the damaged files and warnings.
pub(super) fn write_contents(
    repo: &Repository,
    jobs: &[FileJob],
    threads: usize,
    progress: &dyn Progress,
) -> Result<(Vec<String>, Vec<String>)> {
    let units = units(jobs);
    let next = AtomicUsize::new(0);
    let damaged = Mutex::new(Vec::new());
    let warnings = Mutex::new(Vec::new());
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        threads
    };
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    let mut reader = repo.blob_reader()?;
                    let mut warns = Vec::new();
                    let mut decoded = Vec::new();
                    let mut staging = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&unit) = units.get(i) else { break };
                        let (job, from, to) = match unit {
                            Unit::Whole(j) => (&jobs[j], 0, jobs[j].chunks.len()),
                            Unit::Part(j, from, to) => (&jobs[j], from, to),
                        };
                        let outcome = write_unit(
                            &mut reader,
                            job,
                            from,
                            to,
                            &mut decoded,
                            &mut staging,
                            &mut warns,
                            progress,
                        );
                        if let Err(msg) = outcome {
                            damaged.lock().expect("damaged list").push(msg);
                        }
                    }
                    warnings.lock().expect("warnings").extend(warns);
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::corrupt("restore", "a writer thread panicked")))
            })
            .collect()
    });
    for r in results {
        r?;
    }
    let mut d = damaged.into_inner().unwrap_or_default();
    d.sort();
    d.dedup();
    Ok((d, warnings.into_inner().unwrap_or_default()))
}

/// Write chunks `from..to` of a file; a whole (unshared) file is created here and finished
/// (owner, mode, xattrs, times) through the same descriptor. `decoded` and `staging` are
/// scratch space kept by the thread.
#[allow(clippy::too_many_arguments)]
fn write_unit(
    reader: &mut BlobReader<'_>,
    job: &FileJob,
    from: usize,
    to: usize,
    decoded: &mut Vec<(u64, Vec<u8>)>,
    staging: &mut Vec<u8>,
    warnings: &mut Vec<String>,
    progress: &dyn Progress,
) -> std::result::Result<(), String> {
    let whole = !job.shared;
    let opened = if whole {
        create_file(&job.path).and_then(|f| {
            if job.node.extents.is_some() {
                f.set_len(job.node.size).map_err(|e| Error::io_at(&job.path, e))?;
            }
            Ok(f)
        })
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&job.path)
            .map_err(|e| Error::io_at(&job.path, e))
    };
    let file = opened.map_err(|e| format!("{}: {e}", job.rel.display()))?;
    let mut first_err = None;
    decoded.clear();
    for (off, id, len) in &job.chunks[from..to] {
        match reader.read(BlobKind::Data, id) {
            Ok(data) => decoded.push((*off, data)),
            Err(e) => {
                first_err.get_or_insert(format!(
                    "{}: bytes {off}..{}: {e}",
                    job.rel.display(),
                    off + u64::from(*len)
                ));
            }
        }
    }
    let written = {
        let _writing = job
            .shared
            .then(|| job.writing.lock().unwrap_or_else(|p| p.into_inner()));
        write_runs(&file, &job.path, decoded, staging)
    };
    if let Err(e) = written {
        first_err.get_or_insert(format!("{}: {e}", job.rel.display()));
    }
    progress.inc(job.chunks[from..to].iter().map(|c| u64::from(c.2)).sum());
    decoded.clear();
    if whole {
        // A damaged chunk leaves a hole; the file keeps its full length all the same.
        if first_err.is_some() || job.node.extents.is_none() && written_len(&job.chunks) != job.node.size {
            let _ = file.set_len(job.node.size);
        }
        set_meta_fd(&file, &job.path, &job.node, warnings);
    }
    first_err.map_or(Ok(()), Err)
}

/// Runs at least this long go around the page cache ([`crate::direct`]).
const DIRECT_MIN: u64 = 256 << 10;

/// Write `(offset, bytes)` pieces in offset order, one vectored write per run of adjacent
/// ones; long runs around the page cache.
fn write_runs(
    file: &std::fs::File,
    path: &std::path::Path,
    pieces: &[(u64, Vec<u8>)],
    staging: &mut Vec<u8>,
) -> std::io::Result<()> {
    let mut direct: Option<DirectWriter> = None;
    let mut write = || -> std::io::Result<()> {
        let mut i = 0;
        while i < pieces.len() {
            let start = pieces[i].0;
            let mut end = start;
            let mut j = i;
            while j < pieces.len() && pieces[j].0 == end {
                end += pieces[j].1.len() as u64;
                j += 1;
            }
            let run: Vec<&[u8]> = pieces[i..j].iter().map(|(_, d)| d.as_slice()).collect();
            if end - start >= DIRECT_MIN {
                let writer = match &mut direct {
                    Some(w) => w,
                    None => direct.insert(DirectWriter::new(file.try_clone()?, path, std::mem::take(staging))),
                };
                writer.write_pieces_at(&run, start)?;
            } else {
                write_all_vectored_at(file, &run, start)?;
            }
            i = j;
        }
        Ok(())
    };
    let result = write();
    // The staging memory goes back to the thread for its next unit.
    if let Some(w) = direct {
        *staging = w.into_staging();
    }
    result
}

fn written_len(chunks: &[(u64, Id, u32)]) -> u64 {
    chunks.last().map_or(0, |(off, _, len)| off + u64::from(*len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(lens: &[u32]) -> Vec<(u64, Id, u32)> {
        let mut off = 0;
        lens.iter()
            .map(|&l| {
                off += u64::from(l);
                (off - u64::from(l), Id::default(), l)
            })
            .collect()
    }

    #[test]
    fn parts_hold_at_most_64_chunks_and_8_mib_but_always_one_chunk() {
        assert_eq!(part_starts(&chunks(&[1000; 10])), vec![0]);
        assert_eq!(part_starts(&chunks(&[1000; 130])), vec![0, 64, 128]);
        assert_eq!(part_starts(&chunks(&[3 << 20; 5])), vec![0, 2, 4]);
        assert_eq!(part_starts(&chunks(&[16 << 20, 1, 16 << 20])), vec![0, 1, 2]);
        assert_eq!(part_starts(&[]), vec![0]);
    }
}
