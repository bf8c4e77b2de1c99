//! A replica's output log on disk: rotation and reading. Replicas write `output.log` through
//! descriptors they hold themselves (O_APPEND), so the daemon can neither rename the file under
//! them nor reopen it for them; it rotates by copy-truncate instead, which O_APPEND makes safe
//! (the next write lands at the new end, never past a hole). These functions do blocking file
//! I/O: call them from `spawn_blocking` in async code. Errors name the file involved.

mod follow;

use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

pub use follow::LogFollower;

/// `output.log` → `output.log.N`.
fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Rotates `path` once it holds at least `max_bytes`: `path.1` becomes `path.2` and so on up to
/// `path.{keep}` (older ones are deleted), `path` is copied to `path.1` and then truncated.
/// With `keep == 0` the log is only truncated. Returns whether it rotated. Lines written
/// between the copy and the truncate are lost: the price of not owning the writer's descriptor.
pub fn rotate_log(path: &Path, max_bytes: u64, keep: u32) -> io::Result<bool> {
    let len = match fs_err::metadata(path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if len < max_bytes {
        return Ok(false);
    }
    if keep > 0 {
        remove_if_exists(&rotated(path, keep))?;
        for n in (1..keep).rev() {
            let from = rotated(path, n);
            if fs_err::exists(&from)? {
                fs_err::rename(&from, rotated(path, n + 1))?;
            }
        }
        fs_err::copy(path, rotated(path, 1))?;
    }
    fs_err::OpenOptions::new().write(true).open(path)?.set_len(0)?;
    tracing::debug!(log = %path.display(), bytes = len, keep, "log rotated");
    Ok(true)
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs_err::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The last `max_lines` lines of `path` (without their newlines; invalid UTF-8 replaced). Reads
/// backwards from the end, so a large log costs only what is shown.
pub fn read_log_tail(path: &Path, max_lines: usize) -> io::Result<Vec<String>> {
    if max_lines == 0 {
        return Ok(Vec::new());
    }
    let mut file = fs_err::File::open(path)?;
    let len = file.metadata()?.len();
    let mut start = len;
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk_len: u64 = 8 * 1024;
    loop {
        // Enough when the buffer holds `max_lines` full lines plus the newline before them.
        let newlines = buf.iter().filter(|b| **b == b'\n').count();
        let trailing = usize::from(buf.last() == Some(&b'\n'));
        if start == 0 || newlines >= max_lines + trailing {
            break;
        }
        let read_len = chunk_len.min(start);
        start -= read_len;
        file.seek(SeekFrom::Start(start))?;
        let mut chunk = Vec::with_capacity(usize::try_from(read_len).unwrap_or(0));
        (&mut file).take(read_len).read_to_end(&mut chunk)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
        chunk_len = chunk_len.saturating_mul(2);
    }
    let text = String::from_utf8_lossy(&buf);
    let text = text.strip_suffix('\n').unwrap_or(&text);
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let lines: Vec<&str> = text.split('\n').collect();
    // When reading stopped short of the start, the first piece may be a partial line.
    let skip = lines.len().saturating_sub(max_lines);
    Ok(lines[skip..].iter().map(|l| l.to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_with(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("output.log");
        fs_err::write(&path, text).unwrap();
        path
    }

    #[test]
    fn tail_of_small_and_large_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_with(dir.path(), "a\nb\nc\n");
        assert_eq!(read_log_tail(&path, 2).unwrap(), ["b", "c"]);
        assert_eq!(read_log_tail(&path, 10).unwrap(), ["a", "b", "c"]);
        assert!(read_log_tail(&path, 0).unwrap().is_empty());

        let big: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        let path = log_with(dir.path(), &big);
        assert_eq!(
            read_log_tail(&path, 3).unwrap(),
            ["line 19997", "line 19998", "line 19999"]
        );
        assert_eq!(read_log_tail(&path, 20_000).unwrap().len(), 20_000);
    }

    #[test]
    fn tail_keeps_an_unterminated_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_with(dir.path(), "a\nb\npartial");
        assert_eq!(read_log_tail(&path, 2).unwrap(), ["b", "partial"]);
        let empty = log_with(dir.path(), "");
        assert!(read_log_tail(&empty, 5).unwrap().is_empty());
    }

    #[test]
    fn rotation_shifts_and_drops_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("output.log");
        for round in 1..=4 {
            fs_err::write(&path, format!("round {round}\n")).unwrap();
            assert!(rotate_log(&path, 1, 2).unwrap());
            assert_eq!(fs_err::metadata(&path).unwrap().len(), 0);
        }
        assert_eq!(fs_err::read_to_string(rotated(&path, 1)).unwrap(), "round 4\n");
        assert_eq!(fs_err::read_to_string(rotated(&path, 2)).unwrap(), "round 3\n");
        assert!(!rotated(&path, 3).exists());
        assert!(!rotate_log(&path, 1, 2).unwrap(), "an empty log is below any limit");
        assert!(!rotate_log(&dir.path().join("missing.log"), 1, 2).unwrap());
    }
}
