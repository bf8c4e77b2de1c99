//! `snapshot container`: a container's configuration, its file-system changes and, when asked,
//! its volumes, gathered through the engine's API into a staging directory and saved as one
//! ordinary snapshot of type `container`.

use std::path::PathBuf;
use std::time::Duration;

use bollard::Docker;
use bollard::models::ChangeType;
use serde::Serialize;
use zenith_snapshot::archiver::{CreateOptions, ParentChoice, create};
use zenith_snapshot::progress::Progress;
use zenith_snapshot::{Repository, Snapshot};

use crate::error::{Error, Result, is_not_found};
use crate::plan::{Change, plan};
use crate::record::{ContainerRecord, MountKind, RECORD_FILE, ROOTFS_DIR, VOLUMES_DIR, from_inspect};
use crate::{SNAPSHOT_TYPE, archive};

/// What `snapshot container` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct SnapshotOptions {
    /// The container's name or id.
    pub container: String,
    /// Tags besides `container=NAME`.
    pub tags: Vec<String>,
    /// Also save the data of the container's named and anonymous volumes.
    pub with_volumes: bool,
    /// Record this host name instead of the machine's.
    pub host: Option<String>,
    /// Where to stage the files (default: the system's temporary directory).
    pub staging_dir: Option<PathBuf>,
    /// Compression threads; 0 means one per core.
    pub threads: usize,
    pub lock_wait: Duration,
}

/// What a container snapshot saved.
#[derive(Debug, Serialize)]
pub struct SnapshotReport {
    pub snapshot: Snapshot,
    pub container: String,
    pub container_id: String,
    pub image: String,
    pub running: bool,
    /// Top-most changed paths saved.
    pub files: Vec<String>,
    /// Top-most paths of the image the container deleted (recorded, not restorable).
    pub deleted: Vec<String>,
    /// Volumes whose data was saved.
    pub volumes: Vec<String>,
    /// Mounts whose data is not in the snapshot (`bind /host -> /target`, `volume v -> /t`).
    pub not_captured: Vec<String>,
    /// Bytes of archives the engine sent.
    pub bytes_fetched: u64,
    pub warnings: Vec<String>,
}

/// Snapshots a container into `repo`. Blocks the calling thread while the snapshot is written.
pub async fn snapshot_container(
    docker: &Docker,
    repo: &Repository,
    opts: &SnapshotOptions,
    progress: &dyn Progress,
) -> Result<SnapshotReport> {
    let inspect = match docker.inspect_container(&opts.container, None).await {
        Err(e) if is_not_found(&e) => {
            return Err(Error::NoSuchContainer {
                name: opts.container.clone(),
            });
        }
        other => other.map_err(Error::engine(format!("inspect container {}", opts.container)))?,
    };
    let mut record = from_inspect(&inspect).ok_or_else(|| {
        std::io::Error::other(format!(
            "the engine described container {} without its id, name or config",
            opts.container
        ))
    })?;
    describe_volumes(docker, &mut record).await?;

    let changes: Vec<(String, Change)> = docker
        .container_changes(&record.id)
        .await
        .map_err(Error::engine(format!(
            "list the file changes of container {}",
            record.name
        )))?
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let kind = match c.kind {
                ChangeType::_0 => Change::Modified,
                ChangeType::_1 => Change::Added,
                ChangeType::_2 => Change::Deleted,
            };
            (c.path, kind)
        })
        .collect();
    let mount_targets: Vec<String> = record.mounts.iter().map(|m| m.target.clone()).collect();
    let plan = plan(&changes, &mount_targets);

    let base = opts.staging_dir.clone().unwrap_or_else(std::env::temp_dir);
    let staging = tempfile::Builder::new()
        .prefix("zenith-container-")
        .tempdir_in(&base)
        .map_err(|e| Error::IoAt { path: base, source: e })?;
    let root = staging.path().join(&record.name);
    let rootfs = root.join(ROOTFS_DIR);
    fs_err::create_dir_all(&rootfs)?;
    fs_err::create_dir_all(root.join(VOLUMES_DIR))?;

    let mut warnings = Vec::new();
    let mut fetched = 0u64;
    progress.start("fetch", None);
    for path in &plan.fetch {
        progress.item(path);
        let dest = rootfs.join(parent_of(path));
        match archive::fetch(docker, &record.id, path, &dest, progress).await? {
            Some(n) => {
                fetched += n;
                record.files.push(path.clone());
            }
            None => warnings.push(format!("{path} disappeared while the container was being snapshotted")),
        }
    }
    let mut volumes = Vec::new();
    let mut not_captured = Vec::new();
    for m in &mut record.mounts {
        match (m.kind, &m.name) {
            (MountKind::Volume, Some(name)) if opts.with_volumes => {
                progress.item(&m.target);
                let dest = root.join(VOLUMES_DIR).join(name);
                match archive::fetch(docker, &record.id, &m.target, &dest, progress).await? {
                    Some(n) => {
                        fetched += n;
                        m.captured = true;
                        volumes.push(name.clone());
                    }
                    None => warnings.push(format!("volume {name} is not reachable at {}", m.target)),
                }
            }
            (MountKind::Volume, name) => {
                not_captured.push(format!("volume {} -> {}", name.as_deref().unwrap_or("?"), m.target))
            }
            (MountKind::Bind, _) => {
                not_captured.push(format!("bind {} -> {}", m.source.as_deref().unwrap_or("?"), m.target))
            }
            _ => not_captured.push(format!("{:?} -> {}", m.kind, m.target).to_lowercase()),
        }
    }
    progress.finish();
    record.deleted = plan.deleted;
    let json = serde_json::to_vec_pretty(&record).map_err(std::io::Error::other)?;
    fs_err::write(root.join(RECORD_FILE), json)?;

    let mut tags = vec![format!("container={}", record.name)];
    tags.extend(opts.tags.iter().cloned());
    let created = create(
        repo,
        &CreateOptions {
            paths: vec![root],
            kind: Some(SNAPSHOT_TYPE.to_string()),
            tags,
            host: opts.host.clone(),
            parent: ParentChoice::None,
            threads: opts.threads,
            lock_wait: opts.lock_wait,
            ..Default::default()
        },
        progress,
    )?;
    warnings.extend(created.warnings);
    drop(staging);
    Ok(SnapshotReport {
        snapshot: created.snapshot,
        container: record.name,
        container_id: record.id,
        image: record.image,
        running: record.running,
        files: record.files,
        deleted: record.deleted,
        volumes,
        not_captured,
        bytes_fetched: fetched,
        warnings,
    })
}

/// Adds each volume's driver, options and labels, to create it alike on restore.
async fn describe_volumes(docker: &Docker, record: &mut ContainerRecord) -> Result<()> {
    for m in record.mounts.iter_mut().filter(|m| m.kind == MountKind::Volume) {
        let Some(name) = &m.name else { continue };
        let v = docker
            .inspect_volume(name)
            .await
            .map_err(Error::engine(format!("inspect volume {name}")))?;
        m.driver = Some(v.driver).filter(|d| !d.is_empty());
        m.driver_opts = v.options;
        m.labels = v.labels;
    }
    Ok(())
}

/// The relative local directory standing for a container path's parent: `/a/b` → `a`.
fn parent_of(path: &str) -> &str {
    path.trim_start_matches('/').rsplit_once('/').map_or("", |(p, _)| p)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parent_of_strips_the_root_and_the_name() {
        assert_eq!(super::parent_of("/a/b/c"), "a/b");
        assert_eq!(super::parent_of("/a"), "");
    }
}
