//! Opening and creating repositories, and reading what they hold: config, keys, index, blobs,
//! trees and snapshots. A [`Repository`] value exists only once a key has unlocked it, so
//! nothing can read or write without the master key.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::backend::{FileKind, LocalBackend};
use crate::chunker::ChunkerParams;
use crate::crypto::{Cipher, KdfParams, MasterKey, Password};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::{Index, IndexFile};
use crate::keys::{KeyFile, KeyInfo};
use crate::pack::{self, BlobKind};
use crate::snapshot::Snapshot;
use crate::tree::Tree;

const CONFIG_MAGIC: &[u8] = b"ZENITH\0\x01";
const CONFIG_AAD: &[u8] = b"zenith config v1";
/// The repository format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Settings fixed when a repository is created.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RepositoryConfig {
    pub version: u32,
    pub id: Id,
    pub created: jiff::Timestamp,
    pub chunker: ChunkerParams,
    /// zstd level for new blobs; 0 stores them uncompressed.
    pub compression: i32,
    /// Target pack size in bytes.
    pub pack_size: u32,
}

/// Choices for `repo init`.
#[derive(Clone, Debug)]
pub struct InitOptions {
    pub compression: i32,
    pub pack_size: u32,
    pub kdf: KdfParams,
    pub chunker: ChunkerParams,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            // zstd level 1: within ~1% of level 3's size on typical data, at ~70% of its CPU.
            compression: 1,
            pack_size: 16 << 20,
            kdf: KdfParams::default(),
            chunker: ChunkerParams::default(),
        }
    }
}

/// An unlocked repository.
pub struct Repository {
    backend: LocalBackend,
    config: RepositoryConfig,
    key: MasterKey,
    cipher: Cipher,
    key_id: String,
    /// The loaded index; dropped by [`Repository::invalidate_index`] after writes.
    index: RwLock<Option<Arc<Index>>>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("path", &self.backend.root())
            .field("id", &self.config.id)
            .finish()
    }
}

impl Repository {
    /// Create a repository in a new or empty directory. With `chunking_from`, the new
    /// repository cuts and names data exactly as that one does, so `copy` moves blobs as is.
    pub fn init(
        path: &Path,
        password: &Password,
        opts: &InitOptions,
        chunking_from: Option<&Repository>,
    ) -> Result<Repository> {
        if path.join("config").exists() {
            return Err(Error::AlreadyExists { path: path.into() });
        }
        if path.exists() && fs_err::read_dir(path)?.next().is_some() {
            return Err(Error::NotEmpty { path: path.into() });
        }
        opts.chunker.validate().map_err(Error::InvalidInput)?;
        if !(0..=22).contains(&opts.compression) {
            return Err(Error::InvalidInput(format!(
                "compression level {} is out of range 0..=22",
                opts.compression
            )));
        }
        let (key, chunker) = match chunking_from {
            Some(other) => (other.key.with_same_chunking(), other.config.chunker),
            None => (MasterKey::generate(), opts.chunker),
        };
        let config = RepositoryConfig {
            version: FORMAT_VERSION,
            id: Id::random(),
            created: jiff::Timestamp::now(),
            chunker,
            compression: opts.compression,
            pack_size: opts.pack_size.clamp(1 << 20, 1 << 30),
        };
        let backend = LocalBackend::new(path);
        backend.create_layout()?;
        let key_id = KeyFile::create(&key, password, opts.kdf)?.save(&backend)?;
        let cipher = key.cipher();
        let json = serde_json::to_vec(&config).map_err(|e| Error::corrupt("config", e))?;
        let mut bytes = CONFIG_MAGIC.to_vec();
        bytes.extend(cipher.seal(&json, CONFIG_AAD));
        // The config is written last: until it exists, the directory is not a repository.
        backend.write_config(&bytes)?;
        Ok(Repository {
            backend,
            config,
            key,
            cipher,
            key_id,
            index: RwLock::new(None),
        })
    }

    /// Open a repository with a password, trying each key.
    pub fn open(path: &Path, password: &Password) -> Result<Repository> {
        let backend = LocalBackend::new(path);
        let bytes = backend.read_config()?;
        let Some(sealed) = bytes.strip_prefix(CONFIG_MAGIC) else {
            return Err(Error::corrupt(
                format!("{}", backend.config_path().display()),
                "not a zenith config (or written by an unknown format version)",
            ));
        };
        let keys = backend.list(FileKind::Key)?;
        if keys.is_empty() {
            return Err(Error::corrupt(
                format!("{}", path.join("keys").display()),
                "the repository has no key files, so it cannot be opened",
            ));
        }
        for k in &keys {
            let Ok(file) = KeyFile::load(&backend, &k.name) else {
                continue;
            };
            if let Some(key) = file.unwrap_master(password)? {
                let cipher = key.cipher();
                let json = cipher.open(sealed, CONFIG_AAD, &"repository config")?;
                let config: RepositoryConfig =
                    serde_json::from_slice(&json).map_err(|e| Error::corrupt("repository config", e))?;
                if config.version != FORMAT_VERSION {
                    return Err(Error::corrupt(
                        "repository config",
                        format!(
                            "format version {} is not supported by this zenith (it reads {FORMAT_VERSION})",
                            config.version
                        ),
                    ));
                }
                config
                    .chunker
                    .validate()
                    .map_err(|e| Error::corrupt("repository config", e))?;
                return Ok(Repository {
                    backend,
                    config,
                    key,
                    cipher,
                    key_id: k.name.clone(),
                    index: RwLock::new(None),
                });
            }
        }
        // No key opened: a damaged key file must not pass for a wrong password.
        for k in &keys {
            let bytes = backend.read(FileKind::Key, &k.name)?;
            if Id::hash(&bytes).to_hex() != k.name {
                return Err(Error::corrupt(
                    format!("key file {}", k.name),
                    "its contents do not match its name, so it cannot be used; open the repository with another key",
                ));
            }
        }
        Err(Error::WrongPassword { path: path.into() })
    }

    pub fn path(&self) -> &Path {
        self.backend.root()
    }

    pub fn backend(&self) -> &LocalBackend {
        &self.backend
    }

    pub fn config(&self) -> &RepositoryConfig {
        &self.config
    }

    pub fn key(&self) -> &MasterKey {
        &self.key
    }

    pub fn cipher(&self) -> &Cipher {
        &self.cipher
    }

    /// The id of the key file that opened this repository.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// True when `other` cuts and names data exactly as this repository does.
    pub fn same_chunking(&self, other: &Repository) -> bool {
        self.key.same_chunking(&other.key) && self.config.chunker == other.config.chunker
    }

    // ---- keys ----

    pub fn add_key(&self, password: &Password, kdf: KdfParams) -> Result<String> {
        KeyFile::create(&self.key, password, kdf)?.save(&self.backend)
    }

    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let mut out = Vec::new();
        for k in self.backend.list(FileKind::Key)? {
            let f = KeyFile::load(&self.backend, &k.name)?;
            out.push(KeyInfo {
                current: k.name == self.key_id,
                id: k.name,
                created: f.created,
                host: f.host,
                username: f.username,
            });
        }
        out.sort_by_key(|k| k.created);
        Ok(out)
    }

    /// Remove a key by id or unique prefix. The key in use cannot be removed.
    pub fn remove_key(&self, query: &str) -> Result<String> {
        let keys = self.backend.list(FileKind::Key)?;
        let matching: Vec<_> = keys.iter().filter(|k| k.name.starts_with(query)).collect();
        let [only] = matching.as_slice() else {
            return Err(Error::NoSuchKey(query.into()));
        };
        if only.name == self.key_id {
            return Err(Error::RemoveCurrentKey);
        }
        self.backend.remove(FileKind::Key, &only.name)?;
        Ok(only.name.clone())
    }

    /// Replace the key in use with one for `new`: the new key is stored before the old one
    /// is removed, so a crash leaves at least one working key.
    pub fn change_password(&mut self, new: &Password, kdf: KdfParams) -> Result<String> {
        let id = self.add_key(new, kdf)?;
        self.backend.remove(FileKind::Key, &self.key_id)?;
        self.key_id = id.clone();
        Ok(id)
    }

    // ---- index and blobs ----

    /// Read and open every index file.
    pub fn load_index_files(&self) -> Result<Vec<(String, IndexFile)>> {
        let mut out = Vec::new();
        for f in self.backend.list(FileKind::Index)? {
            let bytes = self.backend.read(FileKind::Index, &f.name)?;
            out.push((f.name.clone(), IndexFile::open(&bytes, &self.cipher, &f.name)?));
        }
        Ok(out)
    }

    /// The index, loaded on first use.
    pub fn index(&self) -> Result<Arc<Index>> {
        if let Some(i) = self.index.read().expect("index lock").as_ref() {
            return Ok(i.clone());
        }
        let mut index = Index::default();
        for (_, file) in self.load_index_files()? {
            index.add_file(file);
        }
        let index = Arc::new(index);
        *self.index.write().expect("index lock") = Some(index.clone());
        Ok(index)
    }

    /// Forget the loaded index, so the next use reads the index files again (after this
    /// process added or removed some).
    pub fn invalidate_index(&self) {
        *self.index.write().expect("index lock") = None;
    }

    /// Path of a pack file.
    pub fn pack_path(&self, id: &Id) -> PathBuf {
        self.backend.path(FileKind::Pack, &id.to_hex())
    }

    /// The plaintext of a blob, authenticated and checked against its id.
    pub fn read_blob(&self, kind: BlobKind, id: &Id) -> Result<Vec<u8>> {
        self.blob_reader()?.read(kind, id)
    }

    /// A reader for many blobs in a row: it keeps pack files open and reuses its
    /// decompression context. One per thread.
    pub fn blob_reader(&self) -> Result<BlobReader<'_>> {
        self.blob_reader_with(self.index()?)
    }

    /// A blob reader that locates blobs through `index` instead of the loaded index (verify
    /// builds its own, to report damaged index files one by one).
    pub fn blob_reader_with(&self, index: Arc<Index>) -> Result<BlobReader<'_>> {
        Ok(BlobReader {
            repo: self,
            index,
            open: Vec::new(),
            dctx: zstd::bulk::Decompressor::new()?,
            sealed: Vec::new(),
        })
    }

    pub fn load_tree(&self, id: &Id) -> Result<Tree> {
        self.blob_reader()?.load_tree(id)
    }

    // ---- snapshots ----
}

/// Reads blobs with a few pack files kept open (see [`Repository::blob_reader`]).
pub struct BlobReader<'r> {
    repo: &'r Repository,
    index: Arc<Index>,
    /// Recently used packs, most recent last.
    open: Vec<(u32, std::fs::File)>,
    dctx: zstd::bulk::Decompressor<'static>,
    /// The sealed blob being read.
    sealed: Vec<u8>,
}

impl BlobReader<'_> {
    const OPEN_PACKS: usize = 8;

    /// The plaintext of a blob, authenticated and checked against its id.
    pub fn read(&mut self, kind: BlobKind, id: &Id) -> Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let loc = *self
            .index
            .get(id)
            .filter(|l| l.kind == kind)
            .ok_or_else(|| Error::BlobNotFound { id: id.to_hex() })?;
        let pos = match self.open.iter().position(|(p, _)| *p == loc.pack) {
            Some(pos) => pos,
            None => {
                let path = self.repo.pack_path(self.index.pack_id(loc.pack));
                let f = std::fs::File::open(&path).map_err(|e| Error::io_at(&path, e))?;
                if self.open.len() == Self::OPEN_PACKS {
                    self.open.remove(0);
                }
                self.open.push((loc.pack, f));
                self.open.len() - 1
            }
        };
        // One buffer for every blob read, grown and never cleared: no allocation and no
        // zeroing per blob.
        let len = loc.length as usize;
        if self.sealed.len() < len {
            self.sealed.resize(len, 0);
        }
        let sealed = &mut self.sealed[..len];
        self.open[pos]
            .1
            .read_exact_at(sealed, u64::from(loc.offset))
            .map_err(|e| {
                Error::corrupt(
                    format!("pack {}", self.index.pack_id(loc.pack)),
                    format!("cannot read {} bytes at offset {}: {e}", loc.length, loc.offset),
                )
            })?;
        pack::open_blob_with(
            sealed,
            kind,
            id,
            loc.compressed,
            loc.raw_len,
            &self.repo.cipher,
            &self.repo.key,
            Some(&mut self.dctx),
        )
    }

    /// A tree blob, decoded and validated.
    pub fn load_tree(&mut self, id: &Id) -> Result<Tree> {
        let bytes = self.read(BlobKind::Tree, id)?;
        Tree::decode(&bytes).map_err(|e| Error::corrupt(format!("tree {id}"), e))
    }
}

impl Repository {
    /// Every snapshot, oldest first.
    pub fn snapshots(&self) -> Result<Vec<Snapshot>> {
        let mut out = Vec::new();
        for f in self.backend.list(FileKind::Snapshot)? {
            let Ok(id) = f.name.parse::<Id>() else { continue };
            out.push(self.load_snapshot(&id)?);
        }
        out.sort_by(|a, b| a.time.cmp(&b.time).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    pub fn load_snapshot(&self, id: &Id) -> Result<Snapshot> {
        let bytes = self.backend.read(FileKind::Snapshot, &id.to_hex())?;
        Snapshot::open(&bytes, id, &self.cipher)
    }

    pub fn save_snapshot(&self, snap: &Snapshot) -> Result<()> {
        let bytes = snap.seal(&self.cipher)?;
        self.backend.write(FileKind::Snapshot, &snap.id.to_hex(), &bytes)
    }

    pub fn remove_snapshot(&self, id: &Id) -> Result<()> {
        self.backend.remove(FileKind::Snapshot, &id.to_hex())
    }

    /// Find one snapshot by full id, unique id prefix, `latest`, name or tag (newest wins for
    /// names and tags).
    pub fn find_snapshot(&self, query: &str) -> Result<Snapshot> {
        let all = self.snapshots()?;
        crate::snapshot::find(&all, query).cloned()
    }
}
