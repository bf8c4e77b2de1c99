//! Reading files for a snapshot: reader threads take batches of files, read each into a
//! segment buffer, cut it into chunks, hash them, and hand the segment with the chunks nobody
//! stored before to the saver once it is full. Chunks are never copied out one by one, and the
//! threads meet the saver about once per MiB, not once per chunk.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use super::meta::data_extents;
use crate::chunker::{Chunker, read_retrying};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::pack::BlobKind;
use crate::progress::Progress;
use crate::saver::{BlobSaver, Known, Segment};
use crate::tree::Extent;

/// What reading a file needs; shared by the reader threads and the walker.
pub(super) struct ReadCtx<'a> {
    pub key: &'a crate::crypto::MasterKey,
    pub chunker: &'a Chunker,
    pub known: &'a Known,
    pub saver: &'a BlobSaver,
    pub progress: &'a dyn Progress,
}

/// A file's contents as read: chunk ids, data regions (sparse files) and bytes read.
pub(super) struct FileRead {
    pub content: Vec<Id>,
    pub extents: Option<Vec<Extent>>,
    pub read: u64,
}

/// One file to read, and where its node waits for the answer.
pub(super) struct FileJob {
    pub path: PathBuf,
    pub size: u64,
    pub blocks: u64,
    /// The open directory and the slot of the file's node in it.
    pub dir: usize,
    pub slot: usize,
    /// Whether the parent snapshot had the file (it counts as changed rather than new).
    pub changed: bool,
}

/// The answer to one [`FileJob`].
pub(super) struct FileDone {
    pub dir: usize,
    pub slot: usize,
    pub changed: bool,
    pub result: Result<FileRead>,
}

/// Files handed to the reader threads together.
pub(super) type Batch = Vec<FileJob>;

/// A reader thread: answer each batch with one message; hand the saver the partly filled
/// segment whenever there is nothing else to do, so no chunk waits on a later file.
pub(super) fn reader_thread(ctx: &ReadCtx<'_>, jobs: &Receiver<Batch>, done: &Sender<Vec<FileDone>>) -> Result<()> {
    let mut reader = FileReader::new(ctx);
    loop {
        let batch = match jobs.try_recv() {
            Ok(b) => b,
            Err(TryRecvError::Empty) => {
                reader.flush()?;
                match jobs.recv() {
                    Ok(b) => b,
                    Err(_) => break,
                }
            }
            Err(TryRecvError::Disconnected) => break,
        };
        let answers: Vec<FileDone> = batch
            .into_iter()
            .map(|job| {
                // A bug must not leave the walker waiting for an answer that never comes.
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    reader.read_file(&job.path, job.size, job.blocks)
                }))
                .unwrap_or_else(|_| {
                    reader.discard_uncut();
                    Err(Error::corrupt("snapshot create", "a file reader panicked"))
                });
                FileDone {
                    dir: job.dir,
                    slot: job.slot,
                    changed: job.changed,
                    result,
                }
            })
            .collect();
        if done.send(answers).is_err() {
            // The walker has stopped (it failed); its error is the one to report.
            break;
        }
    }
    reader.flush()
}

/// Reads files into a segment buffer and cuts them into chunks there.
///
/// The buffer holds `[0, cut)`: bytes of chunks already cut (the new ones are marked in the
/// segment), and `[cut, filled)`: bytes of the file being read that are not cut yet (none
/// between files).
pub(super) struct FileReader<'a> {
    ctx: &'a ReadCtx<'a>,
    segment: Segment,
    cut: usize,
    filled: usize,
}

impl<'a> FileReader<'a> {
    pub fn new(ctx: &'a ReadCtx<'a>) -> FileReader<'a> {
        FileReader {
            ctx,
            segment: ctx.saver.segment(),
            cut: 0,
            filled: 0,
        }
    }

    /// Read a file: cut it into chunks, hash them, mark the new ones for storage.
    pub fn read_file(&mut self, path: &Path, size: u64, blocks: u64) -> Result<FileRead> {
        let result = self.read_file_inner(path, size, blocks);
        if result.is_err() {
            // What was read of a file that failed part way is not cut, and must not become
            // the start of the next file. Chunks already marked are stored all the same
            // (unreferenced, for prune to remove).
            self.discard_uncut();
        }
        result
    }

    fn discard_uncut(&mut self) {
        self.filled = self.cut;
    }

    fn read_file_inner(&mut self, path: &Path, size: u64, blocks: u64) -> Result<FileRead> {
        self.ctx.progress.item(&path.to_string_lossy());
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
        let mut content = Vec::new();
        let read = match &extents {
            None => self.read_region(&mut file, &mut content),
            Some(regions) => {
                let mut read = 0;
                for r in regions {
                    file.seek(SeekFrom::Start(r.offset))
                        .map_err(|e| Error::io_at(path, e))?;
                    read += self.read_region(&mut (&file).take(r.len), &mut content)?;
                }
                Ok(read)
            }
        }
        .map_err(|e| match e {
            Error::Io(io) => Error::io_at(path, io),
            other => other,
        })?;
        Ok(FileRead { content, extents, read })
    }

    /// Cut everything `reader` yields into chunks; returns the bytes read.
    fn read_region(&mut self, reader: &mut dyn Read, content: &mut Vec<Id>) -> Result<u64> {
        let ctx = self.ctx;
        let max = ctx.chunker.max_size();
        let mut eof = false;
        let mut total = 0u64;
        loop {
            // FastCDC needs a maximal chunk ahead of the cut (or the end of the stream) to
            // cut where it would in one pass over the whole file.
            while !eof && self.filled - self.cut < max {
                if self.segment.data().len() - self.filled < max {
                    self.rotate()?;
                }
                let n = read_retrying(reader, &mut self.segment.data_mut()[self.filled..])?;
                if n == 0 {
                    eof = true;
                }
                self.filled += n;
                total += n as u64;
            }
            if self.cut == self.filled {
                return Ok(total);
            }
            let chunk = &self.segment.data()[self.cut..self.filled];
            let len = ctx.chunker.next_cut(chunk);
            let id = ctx.key.blob_id(&chunk[..len]);
            content.push(id);
            if !ctx.known.check_and_mark(&id) {
                self.segment.push(BlobKind::Data, id, self.cut, len);
            }
            ctx.progress.inc(len as u64);
            self.cut += len;
        }
    }

    /// Hand the cut part of the buffer to the saver and go on in a fresh buffer that starts
    /// with the bytes not cut yet.
    fn rotate(&mut self) -> Result<()> {
        let tail = self.cut..self.filled;
        if self.segment.is_empty() {
            // Nothing to store (everything was known): keep the buffer.
            self.segment.data_mut().copy_within(tail.clone(), 0);
        } else {
            let mut next = self.ctx.saver.segment();
            next.data_mut()[..tail.len()].copy_from_slice(&self.segment.data()[tail.clone()]);
            let full = std::mem::replace(&mut self.segment, next);
            self.ctx.saver.save_segment(full)?;
        }
        self.filled = tail.len();
        self.cut = 0;
        Ok(())
    }

    /// Hand over the chunks marked so far (between files, so nothing is left uncut).
    pub fn flush(&mut self) -> Result<()> {
        debug_assert_eq!(self.cut, self.filled);
        if self.segment.is_empty() {
            return Ok(());
        }
        self.rotate()
    }
}
