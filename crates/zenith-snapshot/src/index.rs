//! The index: where each blob lives (pack, offset, length). Index files are sealed lists of
//! packs and their entries; the in-memory [`Index`] is their union, kept compact because it is
//! what grows with the repository.

use serde::{Deserialize, Serialize};

use crate::crypto::Cipher;
use crate::error::{Error, Result};
use crate::id::{Id, IdMap};
use crate::pack::{BlobKind, PackEntry};

const INDEX_AAD: &[u8] = b"zenith index v1";

/// One pack as an index file records it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IndexPack {
    pub id: Id,
    pub size: u64,
    pub blobs: Vec<PackEntry>,
}

/// The contents of one index file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IndexFile {
    pub packs: Vec<IndexPack>,
}

impl IndexFile {
    pub fn seal(&self, cipher: &Cipher) -> Result<Vec<u8>> {
        let mut plain = Vec::new();
        ciborium::into_writer(self, &mut plain).map_err(|e| Error::corrupt("index", e))?;
        let plain = zstd::bulk::compress(&plain, 3)?;
        Ok(cipher.seal(&plain, INDEX_AAD))
    }

    pub fn open(sealed: &[u8], cipher: &Cipher, name: &str) -> Result<IndexFile> {
        let what = format!("index file {name}");
        let plain = cipher.open(sealed, INDEX_AAD, &what)?;
        let plain = zstd::stream::decode_all(plain.as_slice()).map_err(|e| Error::corrupt(&what, e))?;
        ciborium::from_reader(plain.as_slice()).map_err(|e| Error::corrupt(&what, e))
    }
}

/// Where one blob is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// Position of the pack in [`Index::packs`].
    pub pack: u32,
    pub offset: u32,
    pub length: u32,
    pub raw_len: u32,
    pub kind: BlobKind,
    pub compressed: bool,
}

/// Everything the loaded index files say.
#[derive(Default, Debug)]
pub struct Index {
    packs: Vec<Id>,
    pack_sizes: Vec<u64>,
    pack_pos: IdMap<u32>,
    blobs: IdMap<Location>,
}

impl Index {
    /// Add the packs of one index file (a pack seen twice keeps its first record).
    pub fn add_file(&mut self, file: IndexFile) {
        for p in file.packs {
            self.add_pack(p.id, p.size, &p.blobs);
        }
    }

    pub fn add_pack(&mut self, id: Id, size: u64, blobs: &[PackEntry]) {
        if self.pack_pos.contains_key(&id) {
            return;
        }
        let pos = self.packs.len() as u32;
        self.packs.push(id);
        self.pack_sizes.push(size);
        self.pack_pos.insert(id, pos);
        self.blobs.reserve(blobs.len());
        for e in blobs {
            self.blobs.entry(e.id).or_insert(Location {
                pack: pos,
                offset: e.offset,
                length: e.length,
                raw_len: e.raw_len,
                kind: e.kind,
                compressed: e.compressed,
            });
        }
    }

    pub fn get(&self, id: &Id) -> Option<&Location> {
        self.blobs.get(id)
    }

    pub fn contains(&self, id: &Id) -> bool {
        self.blobs.contains_key(id)
    }

    pub fn has_pack(&self, id: &Id) -> bool {
        self.pack_pos.contains_key(id)
    }

    pub fn pack_id(&self, pos: u32) -> &Id {
        &self.packs[pos as usize]
    }

    pub fn pack_size(&self, pos: u32) -> u64 {
        self.pack_sizes[pos as usize]
    }

    pub fn packs(&self) -> impl Iterator<Item = (u32, &Id, u64)> {
        self.packs
            .iter()
            .zip(&self.pack_sizes)
            .enumerate()
            .map(|(i, (id, size))| (i as u32, id, *size))
    }

    pub fn blobs(&self) -> impl Iterator<Item = (&Id, &Location)> {
        self.blobs.iter()
    }

    pub fn blob_count(&self) -> usize {
        self.blobs.len()
    }

    pub fn pack_count(&self) -> usize {
        self.packs.len()
    }
}
