//! Pack files: many sealed blobs back to back, then a sealed header listing them, then the
//! header's length. A pack is named by the BLAKE3 hash of its bytes, so any damaged byte shows
//! as a name mismatch; its header lets the index be rebuilt from the packs alone.

use serde::{Deserialize, Serialize};

use crate::crypto::Cipher;
use crate::error::{Error, Result};
use crate::id::Id;

/// What a blob holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BlobKind {
    /// A chunk of file contents.
    Data,
    /// A directory listing ([`crate::tree::Tree`]).
    Tree,
}

impl BlobKind {
    fn tag(self) -> u8 {
        match self {
            BlobKind::Data => b'd',
            BlobKind::Tree => b't',
        }
    }
}

/// Associated data of a sealed blob: its kind and id, so a blob cannot be passed off as
/// another one or as a different kind.
pub fn blob_aad(kind: BlobKind, id: &Id) -> [u8; 33] {
    let mut aad = [0u8; 33];
    aad[0] = kind.tag();
    aad[1..].copy_from_slice(id.as_bytes());
    aad
}

const HEADER_AAD: &[u8] = b"zenith pack header v1";

/// One blob's place in a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackEntry {
    #[serde(rename = "k")]
    pub kind: BlobKind,
    #[serde(rename = "i")]
    pub id: Id,
    /// Offset of the sealed blob in the pack.
    #[serde(rename = "o")]
    pub offset: u32,
    /// Length of the sealed blob.
    #[serde(rename = "l")]
    pub length: u32,
    /// Length of the plaintext.
    #[serde(rename = "r")]
    pub raw_len: u32,
    /// Whether the sealed plaintext is zstd-compressed.
    #[serde(rename = "z")]
    pub compressed: bool,
}

/// Builds one pack in memory.
#[derive(Default)]
pub struct PackWriter {
    buf: Vec<u8>,
    entries: Vec<PackEntry>,
}

impl PackWriter {
    /// A writer that fills `buf` (cleared first), to reuse the memory of a stored pack.
    pub fn with_buffer(mut buf: Vec<u8>) -> PackWriter {
        buf.clear();
        PackWriter {
            buf,
            entries: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Append an already-sealed blob (used by prune's repack and by copy).
    pub fn add_sealed(&mut self, kind: BlobKind, id: Id, raw_len: u32, compressed: bool, sealed: &[u8]) {
        let offset = self.buf.len() as u32;
        self.buf.extend_from_slice(sealed);
        self.entries.push(PackEntry {
            kind,
            id,
            offset,
            length: sealed.len() as u32,
            raw_len,
            compressed,
        });
    }

    /// Compress (when it helps) and seal `plaintext`, then append it. Returns the sealed size.
    pub fn add(
        &mut self,
        kind: BlobKind,
        id: Id,
        plaintext: &[u8],
        compressor: Option<&mut zstd::bulk::Compressor<'_>>,
        cipher: &Cipher,
    ) -> Result<u32> {
        let compressed = match compressor {
            Some(c) => {
                if worth_compressing(c, plaintext)? {
                    Some(c.compress(plaintext)?)
                } else {
                    None
                }
            }
            None => None,
        };
        let (body, is_compressed) = match &compressed {
            Some(c) if c.len() < plaintext.len() => (c.as_slice(), true),
            _ => (plaintext, false),
        };
        let offset = self.buf.len();
        cipher.seal_into(body, &blob_aad(kind, &id), &mut self.buf);
        let length = (self.buf.len() - offset) as u32;
        self.entries.push(PackEntry {
            kind,
            id,
            offset: offset as u32,
            length,
            raw_len: plaintext.len() as u32,
            compressed: is_compressed,
        });
        Ok(length)
    }

    /// Seal the header and return the finished pack's id, bytes and entries.
    pub fn finish(mut self, cipher: &Cipher) -> Result<(Id, Vec<u8>, Vec<PackEntry>)> {
        let mut header = Vec::new();
        ciborium::into_writer(&self.entries, &mut header).map_err(|e| Error::corrupt("pack header", e))?;
        let start = self.buf.len();
        cipher.seal_into(&header, HEADER_AAD, &mut self.buf);
        let hlen = (self.buf.len() - start) as u32;
        self.buf.extend_from_slice(&hlen.to_le_bytes());
        let id = Id::hash(&self.buf);
        Ok((id, self.buf, self.entries))
    }
}

/// Bytes of a blob tried first to judge whether compressing the whole is worth it.
const SAMPLE: usize = 4096;

/// Compress a sample first: already-compressed or random data (media, archives, encrypted
/// files) skips the full attempt, which would cost time and save nothing.
fn worth_compressing(c: &mut zstd::bulk::Compressor<'_>, plaintext: &[u8]) -> Result<bool> {
    if plaintext.len() < 4 * SAMPLE {
        return Ok(true);
    }
    let sample = c.compress(&plaintext[..SAMPLE])?;
    Ok(sample.len() < SAMPLE * 97 / 100)
}

/// Parse the header from the tail of a pack (`tail` ends at the end of the pack file and
/// `pack_len` is the file's length). Returns the entries, checked to lie inside the pack.
pub fn parse_header(tail: &[u8], pack_len: u64, cipher: &Cipher, name: &str) -> Result<Vec<PackEntry>> {
    let what = format!("pack {name}");
    if tail.len() < 4 {
        return Err(Error::corrupt(&what, "too short to hold a header"));
    }
    let hlen = u32::from_le_bytes(tail[tail.len() - 4..].try_into().unwrap_or_default()) as usize;
    if hlen + 4 > tail.len() {
        return Err(Error::corrupt(&what, format!("header length {hlen} exceeds the pack")));
    }
    let sealed = &tail[tail.len() - 4 - hlen..tail.len() - 4];
    let header = cipher.open(sealed, HEADER_AAD, &what)?;
    let entries: Vec<PackEntry> =
        ciborium::from_reader(header.as_slice()).map_err(|e| Error::corrupt(&what, format!("header: {e}")))?;
    let body_end = pack_len.saturating_sub(4 + hlen as u64);
    for e in &entries {
        if u64::from(e.offset) + u64::from(e.length) > body_end {
            return Err(Error::corrupt(&what, format!("blob {} lies outside the pack", e.id)));
        }
    }
    Ok(entries)
}

/// How many bytes at the end of a pack to read to be likely to get the whole header at once.
pub const HEADER_GUESS: usize = 64 * 1024;

/// Names a blob in error messages (formatted only when an error happens).
struct BlobName<'a>(BlobKind, &'a Id);

impl std::fmt::Display for BlobName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.0 == BlobKind::Data { "data" } else { "tree" };
        write!(f, "{kind} blob {}", self.1)
    }
}

/// Open a sealed blob and return its plaintext, checked against its id.
pub fn open_blob(
    sealed: &[u8],
    entry_kind: BlobKind,
    id: &Id,
    compressed: bool,
    raw_len: u32,
    cipher: &Cipher,
    key: &crate::crypto::MasterKey,
) -> Result<Vec<u8>> {
    open_blob_with(sealed, entry_kind, id, compressed, raw_len, cipher, key, None)
}

/// [`open_blob`] with a reusable decompression context.
#[allow(clippy::too_many_arguments)]
pub fn open_blob_with(
    sealed: &[u8],
    entry_kind: BlobKind,
    id: &Id,
    compressed: bool,
    raw_len: u32,
    cipher: &Cipher,
    key: &crate::crypto::MasterKey,
    dctx: Option<&mut zstd::bulk::Decompressor<'_>>,
) -> Result<Vec<u8>> {
    let what = BlobName(entry_kind, id);
    let body = cipher.open(sealed, &blob_aad(entry_kind, id), &what)?;
    let plain = if compressed {
        let result = match dctx {
            Some(d) => d.decompress(&body, raw_len as usize),
            None => zstd::bulk::decompress(&body, raw_len as usize),
        };
        result.map_err(|e| Error::corrupt(what.to_string(), format!("cannot decompress: {e}")))?
    } else {
        body
    };
    if plain.len() != raw_len as usize {
        return Err(Error::corrupt(
            what.to_string(),
            format!("{} bytes, index says {raw_len}", plain.len()),
        ));
    }
    if key.blob_id(&plain) != *id {
        return Err(Error::corrupt(what.to_string(), "contents do not match the id"));
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    #[test]
    fn pack_round_trip_and_header_parse() {
        let key = MasterKey::generate();
        let cipher = key.cipher();
        let mut comp = zstd::bulk::Compressor::new(3).unwrap();
        let mut w = PackWriter::default();
        let a = b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec();
        let b = b"xyz".to_vec();
        w.add(BlobKind::Data, key.blob_id(&a), &a, Some(&mut comp), &cipher)
            .unwrap();
        w.add(BlobKind::Tree, key.blob_id(&b), &b, Some(&mut comp), &cipher)
            .unwrap();
        let (id, bytes, entries) = w.finish(&cipher).unwrap();
        assert_eq!(id, Id::hash(&bytes));
        let parsed = parse_header(&bytes, bytes.len() as u64, &cipher, "p").unwrap();
        assert_eq!(parsed, entries);
        assert!(parsed[0].compressed && !parsed[1].compressed);
        for (e, plain) in parsed.iter().zip([&a, &b]) {
            let sealed = &bytes[e.offset as usize..(e.offset + e.length) as usize];
            let got = open_blob(sealed, e.kind, &e.id, e.compressed, e.raw_len, &cipher, &key).unwrap();
            assert_eq!(&got, plain);
            // The wrong kind does not open.
            let other = if e.kind == BlobKind::Data {
                BlobKind::Tree
            } else {
                BlobKind::Data
            };
            assert!(open_blob(sealed, other, &e.id, e.compressed, e.raw_len, &cipher, &key).is_err());
        }
    }

    proptest::proptest! {
        #[test]
        fn random_tails_never_panic(tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let cipher = MasterKey::generate().cipher();
            let _ = parse_header(&tail, tail.len() as u64, &cipher, "p");
            let _ = open_blob(&tail, BlobKind::Tree, &Id::default(), true, 64, &cipher, &MasterKey::generate());
        }
    }

    #[test]
    fn garbage_headers_are_errors_not_panics() {
        let cipher = MasterKey::generate().cipher();
        for tail in [&b""[..], b"\x01", b"\xff\xff\xff\xff", b"abcd\x02\x00\x00\x00"] {
            assert!(parse_header(tail, tail.len() as u64, &cipher, "p").is_err());
        }
    }
}
