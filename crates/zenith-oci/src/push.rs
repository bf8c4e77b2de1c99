//! Pushing one snapshot as an OCI artifact. The layers are the files of a repository that
//! holds only that snapshot: the source's config and the key that opened it, one new index
//! file naming just the packs the snapshot uses, the snapshot file, and those packs, as they
//! are. Packs are immutable and named by their contents, so a later push of a later snapshot
//! finds most of them in the registry already and uploads only the new ones.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use zenith_snapshot::backend::{FileKind, LocalBackend};
use zenith_snapshot::index::IndexFile;
use zenith_snapshot::lock::Lock;
use zenith_snapshot::progress::Progress;
use zenith_snapshot::{Id, Repository, Snapshot};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::manifest::{self, ARTIFACT_TYPE, Descriptor, EMPTY_CONTENT, EMPTY_DIGEST, Manifest, OCI_MANIFEST};
use crate::reference::Reference;

/// What a push did.
#[derive(Clone, Debug, Serialize)]
pub struct PushReport {
    pub reference: String,
    pub manifest_digest: String,
    pub snapshot: Id,
    /// Layers (repository files) in the artifact.
    pub layers: u64,
    pub blobs_uploaded: u64,
    /// Blobs the registry had already.
    pub blobs_skipped: u64,
    pub bytes_uploaded: u64,
    /// Size of all layers.
    pub bytes_total: u64,
}

/// Push `snap` of `repo` to `reference` (which must name a tag). Blobs go first, the
/// manifest last, so a failed push never leaves a tag that points to missing blobs.
pub fn push(
    repo: &Repository,
    snap: &Snapshot,
    reference: &Reference,
    client: &mut Client,
    lock_wait: Duration,
    progress: &dyn Progress,
) -> Result<PushReport> {
    if reference.digest.is_some() {
        return Err(Error::InvalidReference {
            reference: reference.to_string(),
            reason: "a push needs a tag, not a digest".into(),
        });
    }
    // A shared lock keeps prune from deleting packs while they are read.
    let _lock = Lock::acquire(repo.backend(), false, "snapshot push", lock_wait)?;
    let staging = tempfile::tempdir()?;
    let files = repository_files(repo, snap, staging.path())?;

    progress.start("hashing", None);
    let mut layers = Vec::new();
    for (title, path) in &files {
        progress.item(title);
        let (digest, size) = manifest::digest_file(path)?;
        let media_type = manifest::layer_media_type(title).expect("zenith writes only repository paths");
        layers.push(Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            annotations: BTreeMap::from([(manifest::TITLE.to_string(), title.clone())]),
        });
    }
    progress.finish();

    let mut report = PushReport {
        reference: reference.to_string(),
        manifest_digest: String::new(),
        snapshot: snap.id,
        layers: layers.len() as u64,
        blobs_uploaded: 0,
        blobs_skipped: 0,
        bytes_uploaded: 0,
        bytes_total: layers.iter().map(|l| l.size).sum(),
    };
    if client.has_blob(EMPTY_DIGEST)? {
        report.blobs_skipped += 1;
    } else {
        client.push_blob_bytes(EMPTY_CONTENT, EMPTY_DIGEST)?;
        report.blobs_uploaded += 1;
        report.bytes_uploaded += EMPTY_CONTENT.len() as u64;
    }
    progress.start("uploading", Some(report.bytes_total));
    for (layer, (title, path)) in layers.iter().zip(&files) {
        progress.item(title);
        if client.has_blob(&layer.digest)? {
            report.blobs_skipped += 1;
            progress.inc(layer.size);
            continue;
        }
        client.push_blob_file(path, &layer.digest, layer.size, progress)?;
        report.blobs_uploaded += 1;
        report.bytes_uploaded += layer.size;
    }
    progress.finish();

    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        artifact_type: Some(ARTIFACT_TYPE.into()),
        config: Descriptor::empty(),
        layers,
        annotations: annotations(snap),
    };
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?;
    report.manifest_digest = client.put_manifest(&reference.tag, &bytes)?;
    Ok(report)
}

/// The manifest's annotations: what `snapshot show` would say about the snapshot.
fn annotations(snap: &Snapshot) -> BTreeMap<String, String> {
    let time = snap.time.to_string();
    let mut a = BTreeMap::from([
        (manifest::CREATED.to_string(), time.clone()),
        (manifest::SNAPSHOT_ID.to_string(), snap.id.to_hex()),
        (manifest::SNAPSHOT_TIME.to_string(), time),
        (manifest::SNAPSHOT_HOST.to_string(), snap.host.clone()),
        (manifest::SNAPSHOT_PATHS.to_string(), snap.paths.join(",")),
        (manifest::SNAPSHOT_TAGS.to_string(), snap.tags.join(",")),
    ]);
    if let Some(kind) = &snap.kind {
        a.insert(manifest::SNAPSHOT_TYPE.to_string(), kind.clone());
    }
    a
}

/// (path in the repository, file on disk) of every file of a repository that holds only
/// `snap`. The one new file, an index of just the packs the snapshot uses, is written under
/// `staging`; the others are the source's own.
fn repository_files(repo: &Repository, snap: &Snapshot, staging: &std::path::Path) -> Result<Vec<(String, PathBuf)>> {
    let packs = packs_used(repo, snap)?;
    let mut file = IndexFile::default();
    for (_, f) in repo.load_index_files()? {
        for p in f.packs {
            if packs.contains(&p.id) && !file.packs.iter().any(|q| q.id == p.id) {
                file.packs.push(p);
            }
        }
    }
    file.packs.sort_by_key(|p| p.id);
    let backend = LocalBackend::new(staging);
    fs_err::create_dir_all(staging.join(FileKind::Index.dir()))?;
    let index_name = zenith_snapshot::saver::write_index_file(&backend, repo.cipher(), &file)?;

    let src = repo.backend();
    let key = repo.key_id().to_string();
    let snapshot = snap.id.to_hex();
    let mut out = vec![
        ("config".to_string(), src.config_path()),
        (format!("keys/{key}"), src.path(FileKind::Key, &key)),
        (
            format!("index/{index_name}"),
            backend.path(FileKind::Index, &index_name),
        ),
        (format!("snapshots/{snapshot}"), src.path(FileKind::Snapshot, &snapshot)),
    ];
    for p in &file.packs {
        let hex = p.id.to_hex();
        out.push((format!("data/{}/{hex}", &hex[..2]), repo.pack_path(&p.id)));
    }
    Ok(out)
}

/// The packs holding the snapshot's trees and file contents.
fn packs_used(repo: &Repository, snap: &Snapshot) -> Result<std::collections::BTreeSet<Id>> {
    let index = repo.index()?;
    let mut reader = repo.blob_reader()?;
    let mut packs = std::collections::BTreeSet::new();
    let mut seen = zenith_snapshot::id::IdSet::default();
    let mut add = |id: &Id, seen: &mut zenith_snapshot::id::IdSet| -> Result<bool> {
        if !seen.insert(*id) {
            return Ok(false);
        }
        let loc = index
            .get(id)
            .ok_or_else(|| zenith_snapshot::Error::BlobNotFound { id: id.to_hex() })?;
        packs.insert(*index.pack_id(loc.pack));
        Ok(true)
    };
    let mut stack = vec![snap.tree];
    while let Some(t) = stack.pop() {
        if !add(&t, &mut seen)? {
            continue;
        }
        let tree = reader.load_tree(&t)?;
        for n in &tree.nodes {
            for id in &n.content {
                add(id, &mut seen)?;
            }
            stack.extend(n.subtree);
        }
    }
    Ok(packs)
}
