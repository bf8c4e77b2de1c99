//! The repository's cryptography, all of it from audited crates: AES-256-GCM (`ring`, whose
//! assembly runs ~3x faster here than the portable implementations) seals every stored object, keyed BLAKE3 names blobs, Argon2id turns a password into a key that
//! unwraps the master key. Nothing here is hand-made cryptography; this module only decides
//! formats and associated data.

use std::sync::Arc;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};
use crate::id::Id;

/// Bytes added to every sealed object: a 12-byte nonce and a 16-byte tag.
pub const SEAL_OVERHEAD: usize = 12 + 16;

/// Fill `buf` from the operating system's random source.
pub fn fill_random(buf: &mut [u8]) {
    // The OS random source failing is not recoverable and not the user's doing.
    getrandom::fill(buf).expect("the operating system's random source failed");
}

/// Random nonces drawn from the operating system's random source a batch at a time, so a
/// thread sealing thousands of blobs makes one system call per [`NONCE_BATCH`] nonces instead
/// of one per blob. Every nonce is still 96 fresh random bits, used once: a source belongs to
/// one thread of one run and is never cloned or persisted.
pub struct NonceSource {
    buf: Box<[u8; 12 * NONCE_BATCH]>,
    /// Index of the next unused nonce in `buf`.
    next: usize,
}

/// Nonces drawn per refill of a [`NonceSource`].
pub const NONCE_BATCH: usize = 256;

impl NonceSource {
    pub fn new() -> NonceSource {
        NonceSource {
            buf: Box::new([0; 12 * NONCE_BATCH]),
            next: NONCE_BATCH,
        }
    }

    /// The next unused nonce.
    pub fn take(&mut self) -> [u8; 12] {
        if self.next == NONCE_BATCH {
            fill_random(&mut self.buf[..]);
            self.next = 0;
        }
        let at = self.next * 12;
        self.next += 1;
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&self.buf[at..at + 12]);
        // Spent nonces are wiped, so none can be handed out twice even by mistake.
        self.buf[at..at + 12].fill(0);
        nonce
    }
}

impl Default for NonceSource {
    fn default() -> Self {
        NonceSource::new()
    }
}

/// A password: never printed, wiped from memory when dropped.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    pub fn new(s: impl Into<String>) -> Password {
        Password(Zeroizing::new(s.into()))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("**REDACTED**")
    }
}

impl std::fmt::Display for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("**REDACTED**")
    }
}

/// The repository's secrets. Every key file wraps one copy of it.
#[derive(Clone, Serialize, Deserialize)]
pub struct MasterKey {
    /// AES-256-GCM key for every sealed object.
    #[serde(with = "serde_bytes")]
    encrypt: [u8; 32],
    /// BLAKE3 key that turns plaintext into blob ids, so ids reveal nothing about contents.
    #[serde(with = "serde_bytes")]
    id_key: [u8; 32],
    /// XORed into the chunker's gear table (not a defence on its own; see the format doc).
    chunker_seed: u64,
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.encrypt.zeroize();
        self.id_key.zeroize();
        self.chunker_seed.zeroize();
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(**REDACTED**)")
    }
}

impl MasterKey {
    /// Fresh random keys.
    pub fn generate() -> MasterKey {
        let mut encrypt = [0u8; 32];
        let mut id_key = [0u8; 32];
        let mut seed = [0u8; 8];
        fill_random(&mut encrypt);
        fill_random(&mut id_key);
        fill_random(&mut seed);
        MasterKey {
            encrypt,
            id_key,
            chunker_seed: u64::from_le_bytes(seed),
        }
    }

    /// The same id key and chunker seed with a fresh encryption key: a repository made this
    /// way chunks and names data exactly as `self`'s does, so blobs copy without re-chunking.
    pub fn with_same_chunking(&self) -> MasterKey {
        let mut fresh = MasterKey::generate();
        fresh.id_key = self.id_key;
        fresh.chunker_seed = self.chunker_seed;
        fresh
    }

    pub fn chunker_seed(&self) -> u64 {
        self.chunker_seed
    }

    /// True when two repositories name and cut data the same way.
    pub fn same_chunking(&self, other: &MasterKey) -> bool {
        self.id_key == other.id_key && self.chunker_seed == other.chunker_seed
    }

    /// The id of a blob: keyed BLAKE3 of its plaintext.
    pub fn blob_id(&self, plaintext: &[u8]) -> Id {
        Id(*blake3::keyed_hash(&self.id_key, plaintext).as_bytes())
    }

    pub fn cipher(&self) -> Cipher {
        cipher_from_key(&self.encrypt)
    }
}

/// An AEAD ready to seal and open objects.
#[derive(Clone)]
pub struct Cipher(Arc<LessSafeKey>);

impl Cipher {
    /// Seal `plaintext` into `out` (appended): nonce ‖ ciphertext ‖ tag, bound to `aad`.
    pub fn seal_into(&self, plaintext: &[u8], aad: &[u8], out: &mut Vec<u8>) {
        let mut nonce = [0u8; 12];
        fill_random(&mut nonce);
        self.seal_into_with(nonce, plaintext, aad, out);
    }

    /// [`Cipher::seal_into`] with a nonce from `nonces`, for callers that seal many objects.
    pub fn seal_into_from(&self, nonces: &mut NonceSource, plaintext: &[u8], aad: &[u8], out: &mut Vec<u8>) {
        self.seal_into_with(nonces.take(), plaintext, aad, out);
    }

    fn seal_into_with(&self, nonce: [u8; 12], plaintext: &[u8], aad: &[u8], out: &mut Vec<u8>) {
        // Random 96-bit nonces: see the format document for the limit this implies.
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut out[start..])
            .expect("AES-GCM seals any message under 64 GiB");
        out.extend_from_slice(tag.as_ref());
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
        self.seal_into(plaintext, aad, &mut out);
        out
    }

    /// Open a sealed object; `what` names it in the error when it fails to authenticate.
    pub fn open(&self, sealed: &[u8], aad: &[u8], what: &dyn std::fmt::Display) -> Result<Vec<u8>> {
        check_sealed_len(sealed, what)?;
        let mut body = sealed[12..].to_vec();
        let len = self.open_body(&sealed[..12], &mut body, aad, what)?;
        body.truncate(len);
        Ok(body)
    }

    /// Open a sealed object in its own memory; returns the plaintext, a part of `sealed`.
    pub fn open_in_place<'s>(
        &self,
        sealed: &'s mut [u8],
        aad: &[u8],
        what: &dyn std::fmt::Display,
    ) -> Result<&'s [u8]> {
        check_sealed_len(sealed, what)?;
        let (nonce, body) = sealed.split_at_mut(12);
        let len = self.open_body(nonce, body, aad, what)?;
        Ok(&body[..len])
    }

    /// Decrypt and authenticate `body` (ciphertext ‖ tag) in place; returns the plaintext's
    /// length.
    fn open_body(&self, nonce: &[u8], body: &mut [u8], aad: &[u8], what: &dyn std::fmt::Display) -> Result<usize> {
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| Error::corrupt(what.to_string(), "bad nonce"))?;
        let plain = self.0.open_in_place(nonce, Aad::from(aad), body).map_err(|_| {
            Error::corrupt(
                what.to_string(),
                "authentication failed (the data was altered or belongs elsewhere)",
            )
        })?;
        Ok(plain.len())
    }
}

fn check_sealed_len(sealed: &[u8], what: &dyn std::fmt::Display) -> Result<()> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(Error::corrupt(
            what.to_string(),
            format!("{} bytes is too short to be sealed data", sealed.len()),
        ));
    }
    Ok(())
}

/// Argon2id parameters stored in each key file, so they can be raised later.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        // 64 MiB and 2 passes: above OWASP's minimum for Argon2id and ~0.1 s here.
        KdfParams {
            m_kib: 64 * 1024,
            t: 2,
            p: 1,
        }
    }
}

impl KdfParams {
    /// Cheap parameters for tests only (the `ZENITH_INSECURE_TEST_KDF` variable).
    pub fn insecure_for_tests() -> KdfParams {
        KdfParams { m_kib: 64, t: 1, p: 1 }
    }

    /// Derive a 32-byte key from a password and salt.
    pub fn derive(&self, password: &Password, salt: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        let params = argon2::Params::new(self.m_kib, self.t, self.p, Some(32))
            .map_err(|e| Error::corrupt("key file", format!("bad Argon2 parameters: {e}")))?;
        let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(password.expose().as_bytes(), salt, out.as_mut())
            .map_err(|e| Error::corrupt("key file", format!("key derivation failed: {e}")))?;
        Ok(out)
    }
}

/// A cipher from a raw derived key (used to wrap the master key).
pub fn cipher_from_key(key: &[u8; 32]) -> Cipher {
    let key = UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte key is valid for AES-256-GCM");
    Cipher(Arc::new(LessSafeKey::new(key)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn password_is_redacted() {
        let p = Password::new("hunter2");
        assert_eq!(format!("{p:?} {p}"), "**REDACTED** **REDACTED**");
        assert!(!format!("{:?}", MasterKey::generate()).contains('['));
    }

    #[test]
    fn tampering_and_wrong_aad_are_detected() {
        let c = MasterKey::generate().cipher();
        let mut sealed = c.seal(b"hello", b"aad");
        assert_eq!(c.open(&sealed, b"aad", &"x").unwrap(), b"hello");
        assert!(c.open(&sealed, b"other", &"x").is_err());
        sealed[14] ^= 1;
        assert!(c.open(&sealed, b"aad", &"x").is_err());
        assert!(c.open(&[1, 2, 3], b"aad", &"x").is_err());
    }

    #[test]
    fn batched_nonces_are_all_distinct_and_open() {
        let c = MasterKey::generate().cipher();
        let mut nonces = NonceSource::new();
        let mut seen = std::collections::HashSet::new();
        for i in 0..3 * NONCE_BATCH + 7 {
            let mut out = Vec::new();
            c.seal_into_from(&mut nonces, b"blob", b"aad", &mut out);
            assert!(seen.insert(out[..12].to_vec()), "nonce {i} repeated");
            assert_eq!(c.open(&out, b"aad", &"x").unwrap(), b"blob");
        }
    }

    proptest! {
        #[test]
        fn seal_open_round_trip(data in proptest::collection::vec(any::<u8>(), 0..4096), aad in proptest::collection::vec(any::<u8>(), 0..64)) {
            let c = MasterKey::generate().cipher();
            let sealed = c.seal(&data, &aad);
            prop_assert_eq!(sealed.len(), data.len() + SEAL_OVERHEAD);
            prop_assert_eq!(c.open(&sealed, &aad, &"x").unwrap(), data);
        }
    }
}
