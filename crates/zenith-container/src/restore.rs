//! `snapshot restore --container`: a new container equivalent to the snapshotted one, with its
//! changed files and its volumes' data. Everything that can be checked is checked before
//! anything is created (name free, image present, volumes free); after that, any failure
//! removes the container and the volumes the restore created.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::{CreateContainerOptions, RemoveContainerOptions, RemoveVolumeOptions};
use serde::Serialize;
use zenith_snapshot::progress::{NoProgress, Progress};
use zenith_snapshot::restorer::{RestoreOptions as FilesOptions, restore};
use zenith_snapshot::{Repository, Snapshot};

use crate::error::{Error, Result, is_not_found};
use crate::record::{
    ContainerRecord, MountKind, MountRecord, RECORD_FILE, RECORD_FORMAT, ROOTFS_DIR, VOLUMES_DIR, create_body,
    restored_volume_name,
};
use crate::{SNAPSHOT_TYPE, archive};

/// What a container restore was asked to do.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// The new container's name.
    pub name: String,
    /// Start it (`Some(true)`), leave it created (`Some(false)`), or do as the original was.
    pub start: Option<bool>,
    /// Create the named volumes as `<prefix><name>`.
    pub volume_prefix: Option<String>,
    /// Where to stage the files (default: the system's temporary directory).
    pub staging_dir: Option<PathBuf>,
    /// Writer threads; 0 means one per core.
    pub threads: usize,
    pub lock_wait: Duration,
}

/// What a container restore did.
#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub container: String,
    pub container_id: String,
    /// The image the container was created from (a name, or an id when the name moved).
    pub image: String,
    pub started: bool,
    pub volumes_created: Vec<String>,
    /// Top-most paths written into the container's file system.
    pub files: Vec<String>,
    /// Bytes of the archive sent to the engine.
    pub bytes_uploaded: u64,
    pub warnings: Vec<String>,
}

/// Recreates the container of a `container` snapshot under a new name.
pub async fn restore_container(
    docker: &Docker,
    repo: &Repository,
    snapshot: &Snapshot,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    if snapshot.kind.as_deref() != Some(SNAPSHOT_TYPE) {
        return Err(Error::NotAContainerSnapshot {
            id: snapshot.id.short(),
            kind: snapshot.kind.clone().unwrap_or_else(|| "not set".into()),
        });
    }
    let base = opts.staging_dir.clone().unwrap_or_else(std::env::temp_dir);
    let staging = tempfile::Builder::new()
        .prefix("zenith-container-")
        .tempdir_in(&base)
        .map_err(|e| Error::IoAt { path: base, source: e })?;
    let record = read_record(repo, snapshot, &staging.path().join("record"), opts)?;

    // Checks first: nothing exists yet that a failure would have to remove.
    if container_exists(docker, &opts.name).await? {
        return Err(Error::NameTaken {
            name: opts.name.clone(),
        });
    }
    let (image, mut warnings) = resolve_image(docker, &record).await?;
    let volumes: Vec<(String, &MountRecord)> = record
        .mounts
        .iter()
        .filter(|m| m.kind == MountKind::Volume && !m.anonymous)
        .filter_map(|m| {
            Some((
                restored_volume_name(m.name.as_deref()?, opts.volume_prefix.as_deref()),
                m,
            ))
        })
        .collect();
    for (name, _) in &volumes {
        if volume_exists(docker, name).await? {
            return Err(Error::VolumeExists { name: name.clone() });
        }
    }

    let files = staging.path().join("files");
    let restored = restore(
        repo,
        snapshot,
        &FilesOptions {
            target: Some(files.clone()),
            backup: false,
            threads: opts.threads,
            lock_wait: opts.lock_wait,
            ..Default::default()
        },
        progress,
    )?;
    warnings.extend(restored.warnings);
    if !restored.damaged.is_empty() {
        return Err(Error::Damaged {
            id: snapshot.id.short(),
            files: restored.damaged.join(", "),
        });
    }

    let mut created = Created::default();
    match apply(docker, &record, &image, &volumes, &files, opts, &mut created, progress).await {
        Ok(mut report) => {
            warnings.append(&mut report.warnings);
            report.warnings = warnings;
            Ok(report)
        }
        Err(e) => Err(created.undo(docker, e).await),
    }
}

/// Reads `container.json` alone, before the files, so the checks come first.
fn read_record(repo: &Repository, snapshot: &Snapshot, dir: &Path, opts: &RestoreOptions) -> Result<ContainerRecord> {
    let bad = |detail: String| Error::BadRecord {
        id: snapshot.id.short(),
        detail,
    };
    let only_record = FilesOptions {
        target: Some(dir.to_path_buf()),
        includes: vec![RECORD_FILE.to_string()],
        backup: false,
        threads: 1,
        lock_wait: opts.lock_wait,
        ..Default::default()
    };
    match restore(repo, snapshot, &only_record, &NoProgress) {
        Err(zenith_snapshot::Error::PathNotInSnapshot { .. }) => return Err(bad("it is missing".into())),
        other => other?,
    };
    let bytes = fs_err::read(dir.join(RECORD_FILE))?;
    let record: ContainerRecord = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    if record.format > RECORD_FORMAT {
        return Err(bad(format!(
            "it has format {}, newer than this zenith reads ({RECORD_FORMAT}); upgrade zenith",
            record.format
        )));
    }
    Ok(record)
}

/// What a restore has created so far, to remove it when a later step fails.
#[derive(Default)]
struct Created {
    container: Option<String>,
    volumes: Vec<String>,
}

impl Created {
    /// Removes everything created (the container with its anonymous volumes, then the named
    /// volumes) and returns `cause`, or the cause with what could not be removed.
    async fn undo(self, docker: &Docker, cause: Error) -> Error {
        let mut left = Vec::new();
        if let Some(id) = &self.container {
            let options = RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            };
            if docker.remove_container(id, Some(options)).await.is_err() {
                left.push(format!("container {id}"));
            }
        }
        for v in self.volumes.iter().rev() {
            let options = RemoveVolumeOptions { force: true };
            if docker.remove_volume(v, Some(options)).await.is_err() {
                left.push(format!("volume {v}"));
            }
        }
        if left.is_empty() {
            cause
        } else {
            Error::RollbackIncomplete {
                cause: Box::new(cause),
                left: left.join(", "),
            }
        }
    }
}

/// Creates the volumes and the container, writes the files, starts it if asked.
#[allow(clippy::too_many_arguments)]
async fn apply(
    docker: &Docker,
    record: &ContainerRecord,
    image: &str,
    volumes: &[(String, &MountRecord)],
    files: &Path,
    opts: &RestoreOptions,
    created: &mut Created,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    for (name, m) in volumes {
        // Checked again right before: the engine answers "created" for a volume that exists.
        if volume_exists(docker, name).await? {
            return Err(Error::VolumeExists { name: name.clone() });
        }
        let request = VolumeCreateRequest {
            name: Some(name.clone()),
            driver: m.driver.clone(),
            driver_opts: Some(m.driver_opts.clone()),
            labels: Some(m.labels.clone()),
            ..Default::default()
        };
        docker
            .create_volume(request)
            .await
            .map_err(Error::engine(format!("create volume {name}")))?;
        created.volumes.push(name.clone());
    }

    let body = create_body(record, image, opts.volume_prefix.as_deref()).map_err(std::io::Error::other)?;
    let options = CreateContainerOptions {
        name: Some(opts.name.clone()),
        ..Default::default()
    };
    let container = match docker.create_container(Some(options), body).await {
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }) => {
            return Err(Error::NameTaken {
                name: opts.name.clone(),
            });
        }
        other => other.map_err(Error::engine(format!("create container {}", opts.name)))?,
    };
    created.container = Some(container.id.clone());

    // One archive extracted at `/`: the changed paths, and each volume's data at its mount
    // target (written through to the volume, since the container is not running yet).
    let rootfs = files.join(ROOTFS_DIR);
    let mut entries: Vec<(String, PathBuf)> = record
        .files
        .iter()
        .map(|p| p.trim_start_matches('/'))
        .map(|rel| (rel.to_string(), rootfs.join(rel)))
        .filter(|(_, local)| local.symlink_metadata().is_ok())
        .collect();
    for m in record.mounts.iter().filter(|m| m.captured) {
        let Some(name) = &m.name else { continue };
        let local = files.join(VOLUMES_DIR).join(name).join(m.target_base());
        if local.symlink_metadata().is_ok() {
            entries.push((m.target.trim_start_matches('/').to_string(), local));
        }
    }
    let mut bytes_uploaded = 0;
    if !entries.is_empty() {
        progress.start("upload", None);
        bytes_uploaded = archive::upload(docker, &container.id, "/", entries, progress).await?;
        progress.finish();
    }

    let start = opts.start.unwrap_or(record.running);
    if start {
        docker
            .start_container(&container.id, None)
            .await
            .map_err(Error::engine(format!("start container {}", opts.name)))?;
    }

    let mut warnings = Vec::new();
    if !record.deleted.is_empty() {
        warnings.push(format!(
            "{} path(s) the original container had deleted from its image are present again: {}",
            record.deleted.len(),
            abbreviate(&record.deleted)
        ));
    }
    let binds: Vec<&str> = record
        .mounts
        .iter()
        .filter(|m| m.kind == MountKind::Bind)
        .filter_map(|m| m.source.as_deref())
        .collect();
    if !binds.is_empty() {
        warnings.push(format!(
            "bind mounts are host directories and were not in the snapshot; the container uses them as they are now: {}",
            binds.join(", ")
        ));
    }
    if let [_, more @ ..] = record.networks.as_slice()
        && !more.is_empty()
    {
        warnings.push(format!(
            "attached to its first network only; connect it to the others yourself: {}",
            more.join(", ")
        ));
    }
    let volumes_created = std::mem::take(&mut created.volumes);
    Ok(RestoreReport {
        container: opts.name.clone(),
        container_id: container.id,
        image: image.to_string(),
        started: start,
        volumes_created,
        files: record.files.clone(),
        bytes_uploaded,
        warnings,
    })
}

/// The image to create the container from: its name when that still names the same image,
/// else the recorded id when the engine has it, else the name with a warning.
async fn resolve_image(docker: &Docker, record: &ContainerRecord) -> Result<(String, Vec<String>)> {
    let by_name = image_id(docker, &record.image).await?;
    if by_name
        .as_ref()
        .is_some_and(|id| record.image_id.is_empty() || *id == record.image_id)
    {
        return Ok((record.image.clone(), Vec::new()));
    }
    let id_present = !record.image_id.is_empty() && image_id(docker, &record.image_id).await?.is_some();
    match (by_name, id_present) {
        (Some(_), true) => Ok((
            record.image_id.clone(),
            vec![format!(
                "image {} now names another image; using the one the container had, {}",
                record.image, record.image_id
            )],
        )),
        (None, true) => Ok((
            record.image_id.clone(),
            vec![format!(
                "image {} is gone; using the container's image by its id, {}",
                record.image, record.image_id
            )],
        )),
        (Some(now), false) => Ok((
            record.image.clone(),
            vec![format!(
                "image {} has changed since the snapshot (it was {}, it is {now}); the restored files may not fit it",
                record.image, record.image_id
            )],
        )),
        (None, false) => Err(Error::ImageMissing {
            image: record.image.clone(),
        }),
    }
}

async fn image_id(docker: &Docker, image: &str) -> Result<Option<String>> {
    match docker.inspect_image(image).await {
        Ok(i) => Ok(Some(i.id.unwrap_or_default())),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(Error::engine(format!("inspect image {image}"))(e)),
    }
}

async fn container_exists(docker: &Docker, name: &str) -> Result<bool> {
    match docker.inspect_container(name, None).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(Error::engine(format!("inspect container {name}"))(e)),
    }
}

async fn volume_exists(docker: &Docker, name: &str) -> Result<bool> {
    match docker.inspect_volume(name).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(Error::engine(format!("inspect volume {name}"))(e)),
    }
}

/// The first few paths of a list, and how many more.
fn abbreviate(paths: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut s = paths.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if paths.len() > SHOWN {
        s.push_str(&format!(" and {} more", paths.len() - SHOWN));
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn abbreviate_counts_the_rest() {
        let paths: Vec<String> = (0..7).map(|i| format!("/p{i}")).collect();
        assert_eq!(super::abbreviate(&paths), "/p0, /p1, /p2, /p3, /p4 and 2 more");
        assert_eq!(super::abbreviate(&paths[..1]), "/p0");
    }
}
