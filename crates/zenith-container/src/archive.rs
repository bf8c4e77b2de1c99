//! Files in and out of a container through the engine's archive API (`docker cp`'s API):
//! a tar streamed from the engine is unpacked while it arrives, and a tar built from local
//! files is streamed to the engine while it is built. The tar work runs on a blocking thread;
//! the two sides meet in a bounded channel, so memory stays small whatever the size.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use bollard::Docker;
use bollard::query_parameters::{DownloadFromContainerOptions, UploadToContainerOptions};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use zenith_snapshot::progress::Progress;

use crate::error::{Error, Result, is_not_found};

/// Chunks in flight between the engine and the tar thread.
const CHANNEL_DEPTH: usize = 16;
/// Bytes gathered before a chunk is sent to the engine.
const CHUNK: usize = 256 * 1024;

/// Fetches `path` from `container` and unpacks it into `dest`, the local directory standing
/// for the path's parent. Returns the bytes received, or `None` when the path is gone.
pub(crate) async fn fetch(
    docker: &Docker,
    container: &str,
    path: &str,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<Option<u64>> {
    let (tx, rx) = mpsc::channel::<Bytes>(CHANNEL_DEPTH);
    let (dest_owned, what) = (dest.to_path_buf(), (container.to_string(), path.to_string()));
    let unpacker = tokio::task::spawn_blocking(move || {
        unpack(ChannelReader { rx, cur: Bytes::new() }, &dest_owned, &what.0, &what.1)
    });
    let options = DownloadFromContainerOptions { path: path.to_string() };
    let mut stream = docker.download_from_container(container, Some(options));
    let mut received = 0u64;
    let mut failed = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => {
                received += bytes.len() as u64;
                progress.inc(bytes.len() as u64);
                if tx.send(bytes).await.is_err() {
                    break; // the unpacker stopped; its error says why
                }
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let unpacked = unpacker.await.map_err(std::io::Error::other)?;
    match failed {
        Some(e) if is_not_found(&e) => return Ok(None),
        Some(e) => return Err(Error::engine(format!("read {path} from container {container}"))(e)),
        None => {}
    }
    unpacked?;
    Ok(Some(received))
}

/// Unpacks a tar into `dest`, keeping modes, owners, times, links and extended attributes,
/// and refusing any entry that would land outside `dest`. Directories are finished last so
/// their times survive their entries being written.
pub(crate) fn unpack(reader: impl Read, dest: &Path, container: &str, path: &str) -> Result<()> {
    fs_err::create_dir_all(dest)?;
    let io_at = |e: std::io::Error| Error::IoAt {
        path: dest.to_path_buf(),
        source: e,
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(true);
    archive.set_overwrite(true);
    let unsafe_entry = |entry: &Path| Error::UnsafeArchive {
        container: container.to_string(),
        path: path.to_string(),
        entry: entry.display().to_string(),
    };
    let mut dirs = Vec::new();
    for entry in archive.entries().map_err(io_at)? {
        let mut entry = entry.map_err(io_at)?;
        let name = entry.path().map_err(io_at)?.into_owned();
        if !stays_inside(&name) {
            return Err(unsafe_entry(&name));
        }
        if entry.header().entry_type().is_dir() {
            dirs.push(entry);
        } else if !entry.unpack_in(dest).map_err(io_at)? {
            return Err(unsafe_entry(&name));
        }
    }
    // Deepest first, so a read-only directory is closed after what is inside it.
    dirs.sort_by(|a, b| b.path_bytes().cmp(&a.path_bytes()));
    for mut dir in dirs {
        dir.unpack_in(dest).map_err(io_at)?;
    }
    Ok(())
}

/// A relative path with no `..`.
fn stays_inside(name: &Path) -> bool {
    name.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Uploads local files into `container` as one tar extracted at `at`: each `(name, source)`
/// becomes the entry `name` (relative to `at`) with everything below it. Returns the bytes
/// sent.
pub(crate) async fn upload(
    docker: &Docker,
    container: &str,
    at: &str,
    entries: Vec<(String, PathBuf)>,
    progress: &dyn Progress,
) -> Result<u64> {
    let (tx, mut rx) = mpsc::channel::<Bytes>(CHANNEL_DEPTH);
    let builder = tokio::task::spawn_blocking(move || {
        build(
            ChannelWriter {
                tx,
                buf: Vec::new(),
                sent: 0,
            },
            &entries,
        )
    });
    let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let options = UploadToContainerOptions {
        path: at.to_string(),
        ..Default::default()
    };
    let uploaded = docker
        .upload_to_container(container, Some(options), bollard::body_stream(body))
        .await;
    let built = builder.await.map_err(std::io::Error::other)?;
    uploaded.map_err(Error::engine(format!("write files into container {container} at {at}")))?;
    let sent = built?;
    progress.inc(sent);
    Ok(sent)
}

/// Writes the tar of `entries` into `out`; returns the bytes written.
fn build(out: ChannelWriter, entries: &[(String, PathBuf)]) -> Result<u64> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    tar.sparse(false);
    for (name, source) in entries {
        let meta = fs_err::symlink_metadata(source)?;
        let added = if meta.is_dir() {
            tar.append_dir_all(name, source)
        } else {
            tar.append_path_with_name(source, name)
        };
        added.map_err(|e| Error::IoAt {
            path: source.clone(),
            source: e,
        })?;
    }
    let mut out = tar.into_inner()?;
    out.flush()?;
    Ok(out.sent)
}

/// The reading end of the download channel.
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}

/// The writing end of the upload channel.
struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
    sent: u64,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.sent += chunk.len() as u64;
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::other("the Docker engine stopped reading the upload"))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o640);
            h.set_mtime(1_000_000);
            h.set_uid(0);
            h.set_gid(0);
            // Set the name bytes directly: `set_path` itself refuses `..`.
            let field = &mut h.as_old_mut().name;
            field[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn unpack_keeps_mode_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let tar = tar_of(&[("a/f", b"hello")]);
        unpack(&tar[..], dir.path(), "c", "/a").unwrap();
        let f = dir.path().join("a/f");
        assert_eq!(std::fs::read(&f).unwrap(), b"hello");
        let meta = std::fs::metadata(&f).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        assert_eq!(meta.mtime(), 1_000_000);
    }

    #[test]
    fn unpack_refuses_entries_escaping_the_destination() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("dest");
        let tar = tar_of(&[("../evil", b"x")]);
        let err = unpack(&tar[..], &dest, "c", "/p").unwrap_err();
        assert!(matches!(err, Error::UnsafeArchive { .. }), "{err}");
        assert!(!dir.path().join("evil").exists());
    }

    #[test]
    fn build_then_unpack_round_trips_a_tree() {
        let src = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(src.path().join("d/sub")).unwrap();
        fs_err::write(src.path().join("d/sub/file"), b"data").unwrap();
        std::os::unix::fs::symlink("sub/file", src.path().join("d/link")).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let reader = ChannelReader { rx, cur: Bytes::new() };
        let entries = vec![("x/d".to_string(), src.path().join("d"))];
        let out = tempfile::tempdir().unwrap();
        let out_path = out.path().to_path_buf();
        let unpacker = std::thread::spawn(move || unpack(reader, &out_path, "c", "/"));
        let sent = rt
            .block_on(async {
                tokio::task::spawn_blocking(move || {
                    build(
                        ChannelWriter {
                            tx,
                            buf: Vec::new(),
                            sent: 0,
                        },
                        &entries,
                    )
                })
                .await
            })
            .unwrap()
            .unwrap();
        unpacker.join().unwrap().unwrap();
        assert!(sent > 0);
        assert_eq!(std::fs::read(out.path().join("x/d/sub/file")).unwrap(), b"data");
        assert_eq!(
            std::fs::read_link(out.path().join("x/d/link")).unwrap(),
            PathBuf::from("sub/file")
        );
    }
}
