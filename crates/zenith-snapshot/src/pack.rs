//! Pack files: many sealed blobs back to back, then a sealed header listing them, then the
//! header's length. A pack is named by the BLAKE3 hash of its bytes, so any damaged byte shows
//! as a name mismatch; its header lets the index be rebuilt from the packs alone.

use serde::{Deserialize, Serialize};

use crate::crypto::{Cipher, NonceSource};
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

/// Builds one pack. The bytes gather in memory; a writer that streams the pack to a file takes
/// them out as they come ([`PackWriter::take_bytes`]), and the pack's hash is computed on the
/// way, so the whole pack never has to be in memory.
#[derive(Default)]
pub struct PackWriter {
    /// Bytes not taken out yet.
    buf: Vec<u8>,
    /// Bytes taken out before `buf`.
    taken: u64,
    /// Hash of the bytes taken out.
    hasher: blake3::Hasher,
    entries: Vec<PackEntry>,
}

impl PackWriter {
    /// A writer that fills `buf` (cleared first), to reuse the memory of an earlier pack.
    pub fn with_buffer(mut buf: Vec<u8>) -> PackWriter {
        buf.clear();
        PackWriter {
            buf,
            ..PackWriter::default()
        }
    }

    /// The pack's length so far.
    pub fn len(&self) -> usize {
        self.taken as usize + self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes gathered in memory since they were last taken out.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Bytes taken out so far: where the next ones go in the pack.
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// Hand the first `n` bytes gathered (at most [`PackWriter::pending`]) to `out` (a file,
    /// say) and forget them.
    pub fn take_bytes<E>(
        &mut self,
        n: usize,
        out: impl FnOnce(&[u8]) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let n = n.min(self.buf.len());
        self.hasher.update(&self.buf[..n]);
        out(&self.buf[..n])?;
        self.taken += n as u64;
        self.buf.drain(..n);
        Ok(())
    }

    /// Append an already-sealed blob (used by prune's repack and by copy).
    pub fn add_sealed(&mut self, kind: BlobKind, id: Id, raw_len: u32, compressed: bool, sealed: &[u8]) {
        let offset = self.len() as u32;
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
        sealer: &mut BlobSealer,
        cipher: &Cipher,
    ) -> Result<u32> {
        let BlobSealer {
            compressor,
            scratch,
            nonces,
            last_compressed,
        } = sealer;
        let (body, is_compressed) = match compressor {
            Some(c) => match compress(c, scratch, plaintext, last_compressed)? {
                Some(compressed) => (compressed, true),
                None => (plaintext, false),
            },
            None => (plaintext, false),
        };
        let start = self.buf.len();
        cipher.seal_into_from(nonces, body, &blob_aad(kind, &id), &mut self.buf);
        let length = (self.buf.len() - start) as u32;
        self.entries.push(PackEntry {
            kind,
            id,
            offset: (self.taken as usize + start) as u32,
            length,
            raw_len: plaintext.len() as u32,
            compressed: is_compressed,
        });
        Ok(length)
    }

    /// Seal the header and return the finished pack's id, its bytes not taken out yet (all
    /// of them when none were) and its entries.
    pub fn finish(mut self, cipher: &Cipher) -> Result<(Id, Vec<u8>, Vec<PackEntry>)> {
        let mut header = Vec::new();
        ciborium::into_writer(&self.entries, &mut header).map_err(|e| Error::corrupt("pack header", e))?;
        let start = self.buf.len();
        cipher.seal_into(&header, HEADER_AAD, &mut self.buf);
        let hlen = (self.buf.len() - start) as u32;
        self.buf.extend_from_slice(&hlen.to_le_bytes());
        self.hasher.update(&self.buf);
        let id = Id(*self.hasher.finalize().as_bytes());
        Ok((id, self.buf, self.entries))
    }
}

/// What sealing blobs needs, made once per thread and reused for every blob: the zstd
/// context, a buffer for its output and a batch of nonces.
pub struct BlobSealer {
    compressor: Option<zstd::bulk::Compressor<'static>>,
    scratch: Vec<u8>,
    nonces: NonceSource,
    /// Whether the last blob compressed. Blobs come mostly in file order, so the next one
    /// likely behaves the same: after a compressible blob the sample is skipped.
    last_compressed: bool,
}

impl BlobSealer {
    /// A sealer compressing at zstd `level`; 0 stores blobs uncompressed.
    pub fn new(level: i32) -> Result<BlobSealer> {
        let compressor = if level > 0 {
            Some(zstd::bulk::Compressor::new(level)?)
        } else {
            None
        };
        Ok(BlobSealer {
            compressor,
            scratch: Vec::new(),
            nonces: NonceSource::new(),
            last_compressed: false,
        })
    }
}

/// `plaintext` compressed into `scratch`, when compressing makes it smaller.
fn compress<'s>(
    c: &mut zstd::bulk::Compressor<'static>,
    scratch: &'s mut Vec<u8>,
    plaintext: &[u8],
    last_compressed: &mut bool,
) -> Result<Option<&'s [u8]>> {
    scratch.clear();
    scratch.reserve(zstd::zstd_safe::compress_bound(plaintext.len()));
    // Unless the last blob compressed, a sample first: already-compressed or random data
    // (media, archives, encrypted files) skips the full attempt, which would cost time and
    // save nothing.
    if !*last_compressed && plaintext.len() >= 4 * SAMPLE {
        let n = c.compress_to_buffer(&plaintext[..SAMPLE], scratch)?;
        if n >= SAMPLE * 97 / 100 {
            return Ok(None);
        }
    }
    let n = c.compress_to_buffer(plaintext, scratch)?;
    // Worth it only when it saves at least what a sample must save.
    *last_compressed = n < plaintext.len() * 97 / 100;
    Ok((n < plaintext.len()).then_some(&scratch[..n]))
}

/// Bytes of a blob tried first to judge whether compressing the whole is worth it.
const SAMPLE: usize = 4096;

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
    open_blob_with(
        &mut sealed.to_vec(),
        entry_kind,
        id,
        compressed,
        raw_len,
        cipher,
        key,
        None,
    )
}

/// [`open_blob`] with a reusable decompression context, opening `sealed` in place (its
/// contents are garbage afterwards).
#[allow(clippy::too_many_arguments)]
pub fn open_blob_with(
    sealed: &mut [u8],
    entry_kind: BlobKind,
    id: &Id,
    compressed: bool,
    raw_len: u32,
    cipher: &Cipher,
    key: &crate::crypto::MasterKey,
    dctx: Option<&mut zstd::bulk::Decompressor<'_>>,
) -> Result<Vec<u8>> {
    let what = BlobName(entry_kind, id);
    let body = cipher.open_in_place(sealed, &blob_aad(entry_kind, id), &what)?;
    let plain = if compressed {
        let result = match dctx {
            Some(d) => d.decompress(body, raw_len as usize),
            None => zstd::bulk::decompress(body, raw_len as usize),
        };
        result.map_err(|e| Error::corrupt(what.to_string(), format!("cannot decompress: {e}")))?
    } else {
        body.to_vec()
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
        let mut sealer = BlobSealer::new(3).unwrap();
        let mut w = PackWriter::default();
        let a = b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec();
        let b = b"xyz".to_vec();
        w.add(BlobKind::Data, key.blob_id(&a), &a, &mut sealer, &cipher)
            .unwrap();
        w.add(BlobKind::Tree, key.blob_id(&b), &b, &mut sealer, &cipher)
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

    #[test]
    fn a_streamed_pack_is_the_pack_built_in_memory() {
        let key = MasterKey::generate();
        let cipher = key.cipher();
        let blobs: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; 1000 + usize::from(i) * 97]).collect();
        let build = |stream: bool| {
            let mut sealer = BlobSealer::new(1).unwrap();
            let mut w = PackWriter::default();
            let mut out = Vec::new();
            for (i, b) in blobs.iter().enumerate() {
                w.add(BlobKind::Data, key.blob_id(b), b, &mut sealer, &cipher).unwrap();
                if stream && i % 7 == 0 {
                    let n = w.pending() - i;
                    w.take_bytes(n, |bytes| -> std::io::Result<()> {
                        out.extend_from_slice(bytes);
                        Ok(())
                    })
                    .unwrap();
                }
            }
            let (id, tail, entries) = w.finish(&cipher).unwrap();
            out.extend_from_slice(&tail);
            (id, out, entries)
        };
        let (id, bytes, entries) = build(true);
        assert_eq!(
            id,
            Id::hash(&bytes),
            "a streamed pack is named by the hash of all its bytes"
        );
        assert_eq!(parse_header(&bytes, bytes.len() as u64, &cipher, "p").unwrap(), entries);
        for (e, plain) in entries.iter().zip(&blobs) {
            let sealed = &bytes[e.offset as usize..(e.offset + e.length) as usize];
            assert_eq!(
                &open_blob(sealed, e.kind, &e.id, e.compressed, e.raw_len, &cipher, &key).unwrap(),
                plain
            );
        }
        let (_, in_memory, _) = build(false);
        assert_eq!(in_memory.len(), bytes.len());
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
