//! The OCI image manifest and descriptor types zenith writes and reads, its media types, and
//! sha256 digests of files and bytes.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The manifest media type zenith pushes and accepts.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// An OCI image index: a multi-platform image, never a zenith snapshot.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// What `artifactType` says on a zenith snapshot.
pub const ARTIFACT_TYPE: &str = "application/vnd.zenith.snapshot.v1";
/// The empty config every artifact without a config of its own points to.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub const EMPTY_CONTENT: &[u8] = b"{}";
pub const EMPTY_DIGEST: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// The layer annotation that carries a file's path in the repository.
pub const TITLE: &str = "org.opencontainers.image.title";
pub const CREATED: &str = "org.opencontainers.image.created";
pub const SNAPSHOT_ID: &str = "dev.zenith.snapshot.id";
pub const SNAPSHOT_TIME: &str = "dev.zenith.snapshot.time";
pub const SNAPSHOT_TYPE: &str = "dev.zenith.snapshot.type";
pub const SNAPSHOT_TAGS: &str = "dev.zenith.snapshot.tags";
pub const SNAPSHOT_PATHS: &str = "dev.zenith.snapshot.paths";
pub const SNAPSHOT_HOST: &str = "dev.zenith.snapshot.host";

/// The layer media type of each kind of repository file.
pub mod layer {
    pub const CONFIG: &str = "application/vnd.zenith.repo.config.v1";
    pub const KEY: &str = "application/vnd.zenith.repo.key.v1";
    pub const INDEX: &str = "application/vnd.zenith.repo.index.v1";
    pub const SNAPSHOT: &str = "application/vnd.zenith.repo.snapshot.v1";
    pub const PACK: &str = "application/vnd.zenith.repo.pack.v1";
}

/// The layer media type of a repository file, by its path in the repository; `None` for a
/// path that is not one zenith writes (`config`, `keys/ID`, `index/ID`, `snapshots/ID`,
/// `data/XX/ID`), which rejects absolute paths, `..` and anything else a hostile artifact
/// could use to write outside the directory it is unpacked in.
pub fn layer_media_type(title: &str) -> Option<&'static str> {
    let is_id = |s: &str| s.len() == 64 && s.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
    let parts: Vec<&str> = title.split('/').collect();
    match parts.as_slice() {
        ["config"] => Some(layer::CONFIG),
        ["keys", id] if is_id(id) => Some(layer::KEY),
        ["index", id] if is_id(id) => Some(layer::INDEX),
        ["snapshots", id] if is_id(id) => Some(layer::SNAPSHOT),
        ["data", dir, id] if is_id(id) && id[..2] == **dir => Some(layer::PACK),
        _ => None,
    }
}

/// A content descriptor: what a blob is, its digest and its size.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// The empty config descriptor (`{}`).
    pub fn empty() -> Descriptor {
        Descriptor {
            media_type: EMPTY_MEDIA_TYPE.into(),
            digest: EMPTY_DIGEST.into(),
            size: EMPTY_CONTENT.len() as u64,
            annotations: BTreeMap::new(),
        }
    }
}

/// An OCI image manifest (schema version 2).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// `sha256:<hex>` of some bytes.
pub fn digest_bytes(data: &[u8]) -> String {
    format!(
        "sha256:{}",
        hex::encode(ring::digest::digest(&ring::digest::SHA256, data))
    )
}

/// `sha256:<hex>` and size of a file, read in pieces (packs can be large).
pub fn digest_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = fs_err::File::open(path)?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
        size += n as u64;
    }
    Ok((format!("sha256:{}", hex::encode(ctx.finish())), size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_descriptor_matches_its_content() {
        assert_eq!(digest_bytes(EMPTY_CONTENT), EMPTY_DIGEST);
    }

    #[test]
    fn only_repository_paths_are_layer_titles() {
        let id = "0a".repeat(32);
        assert_eq!(layer_media_type("config"), Some(layer::CONFIG));
        assert_eq!(layer_media_type(&format!("keys/{id}")), Some(layer::KEY));
        assert_eq!(layer_media_type(&format!("index/{id}")), Some(layer::INDEX));
        assert_eq!(layer_media_type(&format!("snapshots/{id}")), Some(layer::SNAPSHOT));
        assert_eq!(layer_media_type(&format!("data/0a/{id}")), Some(layer::PACK));
        for bad in [
            "/config".to_string(),
            "../config".into(),
            "keys/../config".into(),
            format!("data/0b/{id}"),
            format!("data/0a/../../{id}"),
            format!("/etc/{id}"),
            format!("keys/{}", id.to_uppercase()),
            format!("keys/{id}/x"),
            "locks/x".into(),
            String::new(),
        ] {
            assert_eq!(layer_media_type(&bad), None, "{bad}");
        }
    }

    #[test]
    fn manifests_serialize_with_oci_field_names() {
        let m = Manifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.into()),
            artifact_type: Some(ARTIFACT_TYPE.into()),
            config: Descriptor::empty(),
            layers: vec![],
            annotations: BTreeMap::new(),
        };
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["schemaVersion"], 2);
        assert_eq!(json["artifactType"], ARTIFACT_TYPE);
        assert_eq!(json["config"]["mediaType"], EMPTY_MEDIA_TYPE);
        let back: Manifest = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
    }
}
