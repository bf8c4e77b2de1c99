//! Writing the bulk of large files around the page cache (`O_DIRECT`).
//!
//! Packs (when a snapshot is created) and large restored files are written once and not read
//! again soon. Through the page cache, each written byte first takes a fresh page of memory,
//! which costs more CPU than the copy itself where fresh pages are expensive (virtual machines
//! that hand free memory back to their host), and it evicts the cache the services on the
//! machine live on. So whole aligned blocks go straight to the disk from a reused, aligned
//! buffer; the unaligned ends go through the page cache as usual. Where the file system
//! refuses direct I/O, everything goes through the page cache.

use std::fs::File;
use std::io::IoSlice;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// Direct writes are made of whole blocks of this size, at offsets that are multiples of it,
/// from memory aligned to it (4 KiB satisfies devices with 512-byte and 4 KiB sectors).
pub const BLOCK: usize = 4096;

/// A file written through two descriptors: one through the page cache, and one with
/// `O_DIRECT` for whole aligned blocks when the file system allows it.
pub struct DirectWriter {
    buffered: File,
    direct: Option<File>,
    /// Memory for direct writes: a few extra bytes so an aligned slice always fits.
    staging: Vec<u8>,
}

impl DirectWriter {
    /// Write to `buffered`, the open file at `path`; direct writes use a second descriptor of
    /// the same file, when it can be opened with `O_DIRECT`. `staging` is memory to reuse
    /// (see [`DirectWriter::into_staging`]).
    pub fn new(buffered: File, path: &Path, staging: Vec<u8>) -> DirectWriter {
        let direct = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags((rustix::fs::OFlags::DIRECT | rustix::fs::OFlags::NOFOLLOW).bits() as i32)
            .open(path)
            .ok();
        DirectWriter {
            buffered,
            direct,
            staging,
        }
    }

    /// The staging memory, for the next writer.
    pub fn into_staging(self) -> Vec<u8> {
        self.staging
    }

    /// Write `data` at `offset`: its whole blocks directly (when the file system allows it),
    /// the unaligned ends through the page cache.
    pub fn write_at(&mut self, data: &[u8], offset: u64) -> std::io::Result<()> {
        self.write_pieces_at(&[data], offset)
    }

    /// Write `pieces` one after the other from `offset`, as [`DirectWriter::write_at`] would
    /// their concatenation.
    pub fn write_pieces_at(&mut self, pieces: &[&[u8]], offset: u64) -> std::io::Result<()> {
        let total: usize = pieces.iter().map(|p| p.len()).sum();
        let head = ((BLOCK as u64 - offset % BLOCK as u64) % BLOCK as u64).min(total as u64) as usize;
        let whole = (total - head) / BLOCK * BLOCK;
        if self.direct.is_none() || whole == 0 {
            return write_all_vectored_at(&self.buffered, &slices(pieces, 0, total), offset);
        }
        write_all_vectored_at(&self.buffered, &slices(pieces, 0, head), offset)?;
        let done = self.write_direct(&slices(pieces, head, head + whole), offset + head as u64)?;
        let rest = head + done;
        write_all_vectored_at(&self.buffered, &slices(pieces, rest, total), offset + rest as u64)
    }

    /// Write whole blocks directly as far as possible; returns how many bytes were written.
    fn write_direct(&mut self, pieces: &[&[u8]], offset: u64) -> std::io::Result<usize> {
        let Some(direct) = &self.direct else { return Ok(0) };
        let len: usize = pieces.iter().map(|p| p.len()).sum();
        if self.staging.len() < len + BLOCK {
            self.staging.resize(len + BLOCK, 0);
        }
        let skew = self.staging.as_ptr() as usize % BLOCK;
        let start = (BLOCK - skew) % BLOCK;
        let aligned = &mut self.staging[start..start + len];
        let mut at = 0;
        for p in pieces {
            aligned[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        let mut done = 0;
        while done < aligned.len() {
            match direct.write_at(&aligned[done..], offset + done as u64) {
                // Only whole blocks can go on directly; a short write leaves the rest to the
                // page cache.
                Ok(n) if n > 0 && (done + n).is_multiple_of(BLOCK) => done += n,
                Ok(n) => return Ok(done + n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if refused(&e) => {
                    // The file system or device wants something else: the page cache takes
                    // everything from now on.
                    self.direct = None;
                    return Ok(done);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
}

/// Whether a direct write failed because direct I/O is not possible here (rather than for a
/// reason that writing through the page cache would meet as well, such as a full disk).
fn refused(e: &std::io::Error) -> bool {
    matches!(
        rustix::io::Errno::from_io_error(e),
        Some(rustix::io::Errno::INVAL | rustix::io::Errno::OPNOTSUPP)
    )
}

/// The bytes `from..to` of the concatenation of `pieces`, as slices of them.
fn slices<'a>(pieces: &[&'a [u8]], from: usize, to: usize) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    for p in pieces {
        let (start, end) = (at, at + p.len());
        at = end;
        if end <= from || start >= to {
            continue;
        }
        out.push(&p[from.max(start) - start..to.min(end) - start]);
    }
    out
}

/// Write `pieces` one after the other from `offset` (`pwritev` until everything is written).
pub fn write_all_vectored_at(file: &File, pieces: &[&[u8]], mut offset: u64) -> std::io::Result<()> {
    let mut owned: Vec<IoSlice<'_>> = pieces.iter().map(|p| IoSlice::new(p)).collect();
    let mut bufs = owned.as_mut_slice();
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        // At most IOV_MAX (1024) slices per call.
        match rustix::io::pwritev(file, &bufs[..bufs.len().min(1024)], offset) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                offset += n as u64;
                IoSlice::advance_slices(&mut bufs, n);
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pieces(pieces: &[(u64, usize)]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = std::fs::File::create(&path).unwrap();
        let mut w = DirectWriter::new(file, &path, Vec::new());
        let mut want = Vec::new();
        for &(offset, len) in pieces {
            let data: Vec<u8> = (0..len).map(|i| (i as u64 * 31 + offset) as u8).collect();
            w.write_at(&data, offset).unwrap();
            let end = offset as usize + len;
            if want.len() < end {
                want.resize(end, 0);
            }
            want[offset as usize..end].copy_from_slice(&data);
        }
        drop(w);
        assert_eq!(std::fs::read(&path).unwrap(), want);
        want
    }

    #[test]
    fn pieces_are_written_as_their_concatenation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut w = DirectWriter::new(std::fs::File::create(&path).unwrap(), &path, Vec::new());
        let parts: Vec<Vec<u8>> = [10, 5000, 3 * BLOCK, 1, 70_000]
            .iter()
            .map(|&n| vec![n as u8; n])
            .collect();
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        w.write_pieces_at(&refs, 123).unwrap();
        drop(w);
        let got = std::fs::read(&path).unwrap();
        assert_eq!(&got[..123], &[0; 123][..]);
        assert_eq!(got[123..], parts.concat());
    }

    #[test]
    fn aligned_unaligned_and_short_pieces_land_where_they_belong() {
        write_pieces(&[
            (0, 3 * BLOCK + 100),
            (3 * BLOCK as u64 + 100, 5000),
            (8192 * 4, 1 << 20),
        ]);
        write_pieces(&[(7, 100), (BLOCK as u64, 2 * BLOCK), (100_000, 1)]);
        write_pieces(&[(0, 10)]);
    }
}
