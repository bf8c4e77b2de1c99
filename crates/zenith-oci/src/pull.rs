//! Pulling a snapshot artifact: check the manifest, download every layer into a temporary
//! repository while checking its digest and size, open that repository with the password and
//! copy the snapshot into the local one. The local repository is touched only once all of it
//! has arrived and opened.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;
use zenith_snapshot::backend::LocalBackend;
use zenith_snapshot::copy::CopyReport;
use zenith_snapshot::crypto::Password;
use zenith_snapshot::progress::Progress;
use zenith_snapshot::{Id, Repository};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::manifest::{self, ARTIFACT_TYPE, Manifest, OCI_MANIFEST, layer};
use crate::reference::{Reference, valid_digest};

/// What a pull did.
#[derive(Clone, Debug, Serialize)]
pub struct PullReport {
    pub reference: String,
    pub manifest_digest: String,
    pub snapshot: Id,
    pub blobs_downloaded: u64,
    pub bytes_downloaded: u64,
    /// The copy into the local repository.
    pub copy: CopyReport,
}

/// Pull the snapshot at `reference` into `local`; `password` opens the artifact.
pub fn pull(
    local: &Repository,
    password: &Password,
    reference: &Reference,
    client: &mut Client,
    lock_wait: Duration,
    progress: &dyn Progress,
) -> Result<PullReport> {
    let (bytes, media_type) = client.get_manifest(reference)?;
    let manifest_digest = manifest::digest_bytes(&bytes);
    if let Some(want) = &reference.digest
        && *want != manifest_digest
    {
        return Err(Error::DigestMismatch {
            digest: want.clone(),
            detail: format!("the manifest the registry sent hashes to {manifest_digest}"),
        });
    }
    let manifest = check_manifest(reference, &bytes, &media_type)?;
    // The annotation is not authenticated, but trusting it can only skip a download.
    let announced = manifest
        .annotations
        .get(manifest::SNAPSHOT_ID)
        .and_then(|h| h.parse::<Id>().ok());
    if let Some(id) = announced
        && local.snapshots()?.iter().any(|s| s.id == id)
    {
        return Ok(PullReport {
            reference: reference.to_string(),
            manifest_digest,
            snapshot: id,
            blobs_downloaded: 0,
            bytes_downloaded: 0,
            copy: CopyReport {
                skipped: vec![id],
                ..CopyReport::default()
            },
        });
    }

    let dir = tempfile::tempdir()?;
    let root = dir.path().join("repo");
    LocalBackend::new(&root).create_layout()?;
    let total = manifest.layers.iter().map(|l| l.size).sum();
    progress.start("downloading", Some(total));
    for l in &manifest.layers {
        let title = &l.annotations[manifest::TITLE];
        progress.item(title);
        client.fetch_blob(&l.digest, l.size, &root.join(title), progress)?;
    }
    progress.finish();

    let mini = match Repository::open(&root, password) {
        Ok(r) => r,
        Err(zenith_snapshot::Error::WrongPassword { .. }) => {
            return Err(Error::WrongPassword {
                reference: reference.to_string(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    let snaps = mini.snapshots()?;
    let [snap] = snaps.as_slice() else {
        return Err(bad(
            reference,
            format!("it holds {} snapshots instead of one", snaps.len()),
        ));
    };
    let copy = zenith_snapshot::copy::copy(&mini, local, std::slice::from_ref(snap), lock_wait, progress)?;
    Ok(PullReport {
        reference: reference.to_string(),
        manifest_digest,
        snapshot: snap.id,
        blobs_downloaded: manifest.layers.len() as u64,
        bytes_downloaded: total,
        copy,
    })
}

fn bad(reference: &Reference, detail: impl Into<String>) -> Error {
    Error::BadArtifact {
        reference: reference.to_string(),
        detail: detail.into(),
    }
}

/// Parse the manifest and refuse anything but a well-formed zenith snapshot artifact.
fn check_manifest(reference: &Reference, bytes: &[u8], media_type: &str) -> Result<Manifest> {
    let not_zenith = |found: String| Error::NotZenithArtifact {
        reference: reference.to_string(),
        found,
    };
    let media_type = media_type.split(';').next().unwrap_or_default().trim();
    if media_type.contains("index") || media_type.contains("manifest.list") {
        return Err(not_zenith("it is a multi-platform image index".into()));
    }
    if media_type.starts_with("application/vnd.docker.") {
        return Err(not_zenith("it is a docker container image".into()));
    }
    let manifest: Manifest =
        serde_json::from_slice(bytes).map_err(|e| bad(reference, format!("the manifest does not parse: {e}")))?;
    if manifest.media_type.as_deref().is_some_and(|m| m != OCI_MANIFEST) {
        return Err(not_zenith(format!(
            "its manifest is a {}",
            manifest.media_type.unwrap_or_default()
        )));
    }
    match manifest.artifact_type.as_deref() {
        Some(ARTIFACT_TYPE) => {}
        Some(other) => return Err(not_zenith(format!("its artifact type is {other}"))),
        None => {
            return Err(not_zenith(format!(
                "it is an image with config {}",
                manifest.config.media_type
            )));
        }
    }
    let mut titles = BTreeSet::new();
    let count = |t: &str| manifest.layers.iter().filter(|l| l.media_type == t).count();
    for l in &manifest.layers {
        let Some(title) = l.annotations.get(manifest::TITLE) else {
            return Err(bad(reference, format!("layer {} has no title", l.digest)));
        };
        if manifest::layer_media_type(title) != Some(l.media_type.as_str()) {
            return Err(bad(
                reference,
                format!(
                    "layer title {title:?} is not a repository file of type {}",
                    l.media_type
                ),
            ));
        }
        if !valid_digest(&l.digest) {
            return Err(bad(reference, format!("layer {title} has the digest {:?}", l.digest)));
        }
        if !titles.insert(title.as_str()) {
            return Err(bad(reference, format!("layer title {title} appears twice")));
        }
    }
    if count(layer::CONFIG) != 1 || count(layer::SNAPSHOT) != 1 || count(layer::KEY) == 0 {
        return Err(bad(reference, "it needs one config, one snapshot and at least one key"));
    }
    Ok(manifest)
}
