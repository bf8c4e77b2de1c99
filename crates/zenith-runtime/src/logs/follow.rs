//! Following a log as it grows (`zenith logs APP --follow`). The follower remembers how far it
//! read; a file shorter than that was truncated by a rotation and is read again from the top,
//! a file with a new inode was replaced and is reopened. Only complete lines are returned; a
//! line still being written waits for its newline.

use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// At most this much is read per poll, so a burst never has to fit in memory at once.
const MAX_READ: u64 = 1024 * 1024;

pub struct LogFollower {
    path: PathBuf,
    file: fs_err::File,
    inode: u64,
    offset: u64,
    partial: Vec<u8>,
}

impl LogFollower {
    /// Follows `path` from its current end: the caller shows a tail first, then new lines.
    pub fn from_end(path: &Path) -> io::Result<Self> {
        let mut follower = Self::from_start(path)?;
        follower.offset = follower.file.metadata()?.len();
        Ok(follower)
    }

    /// Follows `path` from byte `offset`: the caller showed everything before it.
    pub fn from_offset(path: &Path, offset: u64) -> io::Result<Self> {
        let mut follower = Self::from_start(path)?;
        follower.offset = offset;
        Ok(follower)
    }

    /// Follows `path` from its first byte.
    pub fn from_start(path: &Path) -> io::Result<Self> {
        let file = fs_err::File::open(path)?;
        let inode = file.metadata()?.ino();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            inode,
            offset: 0,
            partial: Vec::new(),
        })
    }

    /// The complete lines appended since the last call (possibly none). Never blocks on the
    /// writer; does a small synchronous read.
    pub fn poll_lines(&mut self) -> io::Result<Vec<String>> {
        match fs_err::metadata(&self.path) {
            Ok(meta) if meta.ino() != self.inode => {
                tracing::debug!(log = %self.path.display(), "log replaced; reopening");
                *self = Self::from_start(&self.path)?;
            }
            Ok(_) => {}
            // Removed (the replica's directory was cleaned up): keep what is open.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let len = self.file.metadata()?.len();
        if len < self.offset {
            tracing::debug!(log = %self.path.display(), "log truncated; reading from the top");
            self.offset = 0;
            self.partial.clear();
        }
        if len == self.offset {
            return Ok(Vec::new());
        }
        self.file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = std::mem::take(&mut self.partial);
        let read = (&mut self.file)
            .take((len - self.offset).min(MAX_READ))
            .read_to_end(&mut bytes)?;
        self.offset += read as u64;
        let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        self.partial = bytes.split_off(complete);
        Ok(bytes
            .split(|b| *b == b'\n')
            .take(bytes.iter().filter(|b| **b == b'\n').count())
            .map(|line| String::from_utf8_lossy(line).into_owned())
            .collect())
    }

    /// Waits until there are new lines, looking every `interval`.
    pub async fn next_lines(&mut self, interval: Duration) -> io::Result<Vec<String>> {
        loop {
            let lines = self.poll_lines()?;
            if !lines.is_empty() {
                return Ok(lines);
            }
            tokio::time::sleep(interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn append(path: &Path, text: &str) {
        let mut file = fs_err::OpenOptions::new().append(true).create(true).open(path).unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn yields_complete_lines_and_survives_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("output.log");
        append(&path, "old\n");
        let mut follower = LogFollower::from_end(&path).unwrap();
        assert!(follower.poll_lines().unwrap().is_empty());

        append(&path, "one\ntw");
        assert_eq!(follower.poll_lines().unwrap(), ["one"]);
        append(&path, "o\n");
        assert_eq!(follower.poll_lines().unwrap(), ["two"]);

        fs_err::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&path, "after\n");
        assert_eq!(follower.poll_lines().unwrap(), ["after"]);
    }

    #[test]
    fn reopens_a_replaced_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("output.log");
        append(&path, "first file, a long line\n");
        let mut follower = LogFollower::from_start(&path).unwrap();
        assert_eq!(follower.poll_lines().unwrap(), ["first file, a long line"]);
        fs_err::rename(&path, dir.path().join("output.log.1")).unwrap();
        append(&path, "second\n");
        assert_eq!(follower.poll_lines().unwrap(), ["second"]);
    }
}
