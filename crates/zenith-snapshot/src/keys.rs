//! Key files: each wraps the one master key under a key derived from its own password, so
//! several people or machines can open a repository and one key can be revoked alone.

use serde::{Deserialize, Serialize};

use crate::backend::{FileKind, LocalBackend};
use crate::crypto::{self, KdfParams, MasterKey, Password};
use crate::error::{Error, Result};
use crate::id::Id;

const KEY_AAD: &[u8] = b"zenith key v1";

/// A key file as stored (JSON; the master key inside is sealed).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyFile {
    pub created: jiff::Timestamp,
    pub host: String,
    pub username: String,
    pub kdf: KdfParams,
    #[serde(with = "hex_bytes")]
    pub salt: Vec<u8>,
    #[serde(with = "hex_bytes")]
    pub data: Vec<u8>,
}

/// A key as `zenith repo key list` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub created: jiff::Timestamp,
    pub host: String,
    pub username: String,
    pub current: bool,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

impl KeyFile {
    /// Wrap `master` under `password`.
    pub fn create(master: &MasterKey, password: &Password, kdf: KdfParams) -> Result<KeyFile> {
        let mut salt = vec![0u8; 32];
        crypto::fill_random(&mut salt);
        let wrapping = kdf.derive(password, &salt)?;
        let mut plain = Vec::new();
        ciborium::into_writer(master, &mut plain).map_err(|e| Error::corrupt("key", e))?;
        let data = crypto::cipher_from_key(&wrapping).seal(&plain, KEY_AAD);
        zeroize::Zeroize::zeroize(&mut plain);
        Ok(KeyFile {
            created: jiff::Timestamp::now(),
            host: crate::snapshot::hostname(),
            username: crate::snapshot::username(),
            kdf,
            salt,
            data,
        })
    }

    /// Unwrap the master key, or `None` when the password is not this key's.
    pub fn unwrap_master(&self, password: &Password) -> Result<Option<MasterKey>> {
        let wrapping = self.kdf.derive(password, &self.salt)?;
        let Ok(mut plain) = crypto::cipher_from_key(&wrapping).open(&self.data, KEY_AAD, &"key") else {
            return Ok(None);
        };
        let master = ciborium::from_reader(plain.as_slice()).map_err(|e| Error::corrupt("key file", e))?;
        zeroize::Zeroize::zeroize(&mut plain);
        Ok(Some(master))
    }

    /// Store the key file under the hash of its bytes and return its id.
    pub fn save(&self, backend: &LocalBackend) -> Result<String> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::corrupt("key", e))?;
        let id = Id::hash(&bytes).to_hex();
        backend.write(FileKind::Key, &id, &bytes)?;
        Ok(id)
    }

    pub fn load(backend: &LocalBackend, name: &str) -> Result<KeyFile> {
        let bytes = backend.read(FileKind::Key, name)?;
        serde_json::from_slice(&bytes).map_err(|e| Error::corrupt(format!("key file {name}"), e))
    }
}
