//! Where repository files live: a local directory. Every write goes to a temporary file that is
//! synced and then renamed into place, so a reader (or a process killed mid-write) only ever
//! sees whole files. Remote backends will implement the same operations.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The kinds of file in a repository, each in its own directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Key,
    Snapshot,
    Index,
    Pack,
    Lock,
}

impl FileKind {
    pub fn dir(self) -> &'static str {
        match self {
            FileKind::Key => "keys",
            FileKind::Snapshot => "snapshots",
            FileKind::Index => "index",
            FileKind::Pack => "data",
            FileKind::Lock => "locks",
        }
    }
}

/// A repository stored in a local directory.
#[derive(Clone, Debug)]
pub struct LocalBackend {
    root: PathBuf,
}

/// One file found by [`LocalBackend::list`].
#[derive(Clone, Debug)]
pub struct Listed {
    pub name: String,
    pub size: u64,
}

impl LocalBackend {
    pub fn new(root: impl Into<PathBuf>) -> LocalBackend {
        LocalBackend { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn config_path(&self) -> PathBuf {
        self.root.join("config")
    }

    /// The path of a file; packs are spread over 256 subdirectories by their first byte.
    pub fn path(&self, kind: FileKind, name: &str) -> PathBuf {
        let dir = self.root.join(kind.dir());
        match kind {
            FileKind::Pack if name.len() >= 2 => dir.join(&name[..2]).join(name),
            _ => dir.join(name),
        }
    }

    /// Create the directory layout of a new repository.
    pub fn create_layout(&self) -> Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true).mode(0o700);
        builder.create(&self.root).map_err(|e| Error::io_at(&self.root, e))?;
        for kind in [
            FileKind::Key,
            FileKind::Snapshot,
            FileKind::Index,
            FileKind::Pack,
            FileKind::Lock,
        ] {
            let d = self.root.join(kind.dir());
            builder.create(&d).map_err(|e| Error::io_at(&d, e))?;
        }
        for b in 0..=255u8 {
            let d = self.root.join("data").join(format!("{b:02x}"));
            builder.create(&d).map_err(|e| Error::io_at(&d, e))?;
        }
        Ok(())
    }

    /// A fresh name for a temporary file among the files of `kind` (packs: in `data/` itself).
    /// Listings skip it, and [`LocalBackend::remove_stale_temp_files`] removes it if its
    /// writer dies.
    pub fn temp_path(&self, kind: FileKind) -> PathBuf {
        temp_in(&self.root.join(kind.dir()))
    }

    /// Write a whole file atomically (temp file, fsync, rename, fsync of the directory).
    pub fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        write_atomic(&self.path(kind, name), data)
    }

    pub fn write_config(&self, data: &[u8]) -> Result<()> {
        write_atomic(&self.config_path(), data)
    }

    pub fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        Ok(fs_err::read(self.path(kind, name))?)
    }

    pub fn read_config(&self) -> Result<Vec<u8>> {
        let path = self.config_path();
        match std::fs::read(&path) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotARepository {
                path: self.root.clone(),
            }),
            Err(e) => Err(Error::io_at(path, e)),
        }
    }

    /// Read `len` bytes at `offset` of a file.
    pub fn read_at(&self, kind: FileKind, name: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut f = fs_err::File::open(self.path(kind, name))?;
        read_exact_at(&mut f, offset, len)
    }

    /// All files of a kind (names only of the expected 64-hex form for content files).
    pub fn list(&self, kind: FileKind) -> Result<Vec<Listed>> {
        let dir = self.root.join(kind.dir());
        let mut out = Vec::new();
        let mut dirs = vec![dir];
        while let Some(d) = dirs.pop() {
            let rd = match fs_err::read_dir(&d) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            for entry in rd {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                let meta = entry.metadata()?;
                if meta.is_dir() {
                    if kind == FileKind::Pack {
                        dirs.push(entry.path());
                    }
                    continue;
                }
                out.push(Listed { name, size: meta.len() });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        match std::fs::remove_file(self.path(kind, name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io_at(self.path(kind, name), e)),
        }
    }

    /// Remove temporary files older than `max_age` left by killed writers.
    pub fn remove_stale_temp_files(&self, max_age: std::time::Duration) -> Result<usize> {
        let mut removed = 0;
        let mut dirs: Vec<PathBuf> = ["keys", "snapshots", "index", "locks", "data"]
            .iter()
            .map(|d| self.root.join(d))
            .collect();
        dirs.push(self.root.clone());
        for b in 0..=255u8 {
            dirs.push(self.root.join("data").join(format!("{b:02x}")));
        }
        for d in dirs {
            let Ok(rd) = std::fs::read_dir(&d) else { continue };
            for entry in rd.flatten() {
                let name = entry.file_name();
                if !name.to_string_lossy().starts_with(".tmp-") {
                    continue;
                }
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > max_age);
                if old && std::fs::remove_file(entry.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// Read exactly `len` bytes at `offset`, naming the file when it is shorter.
pub fn read_exact_at(f: &mut fs_err::File, offset: u64, len: usize) -> Result<Vec<u8>> {
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf).map_err(|e| {
        Error::corrupt(
            f.path().display().to_string(),
            format!("cannot read {len} bytes at offset {offset}: {e}"),
        )
    })?;
    Ok(buf)
}

/// A fresh temporary file name in `dir`.
fn temp_in(dir: &Path) -> PathBuf {
    dir.join(format!(".tmp-{}", crate::id::Id::random().short()))
}

/// Create a new file that only its owner can read: repository files are the owner's alone
/// (key files invite offline guessing).
pub fn create_private(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io_at(path, e))
}

/// Write `data` to `path` so that `path` is either absent, its old contents, or all of `data`.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = temp_in(dir);
    let result = (|| -> Result<()> {
        let mut f = fs_err::File::from_parts(create_private(&tmp)?, &tmp);
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        fs_err::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// fsync a file written without syncing (packs: the index that names them waits for this).
pub fn sync_file(path: &Path) -> Result<()> {
    fs_err::File::open(path)?.sync_all()?;
    Ok(())
}

/// fsync a directory so a rename in it survives a power loss.
pub fn sync_dir(dir: &Path) -> Result<()> {
    fs_err::File::open(dir)?.sync_all()?;
    Ok(())
}
