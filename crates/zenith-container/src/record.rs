//! `container.json`: what a container snapshot records about the container besides its files,
//! and the pure conversions from the engine's inspect answer and back to a create request.
//!
//! The engine's own `Config` and `HostConfig` are kept whole, so limits, capabilities, log
//! settings and the rest come back without this crate naming each; mounts are recorded in a
//! form of their own because restore may rename volumes.

use std::collections::HashMap;

use bollard::models::{ContainerConfig, ContainerCreateBody, ContainerInspectResponse, HostConfig, Mount, MountType};
use serde::{Deserialize, Serialize};

/// The file name of the record at the top of a container snapshot.
pub const RECORD_FILE: &str = "container.json";
/// The directory of a container snapshot holding the changed files, at their container paths.
pub const ROOTFS_DIR: &str = "rootfs";
/// The directory holding each captured volume as `volumes/<name>/<last component of target>`.
pub const VOLUMES_DIR: &str = "volumes";
/// The version of the record's layout.
pub const RECORD_FORMAT: u32 = 1;

/// Everything about a container that is not its files.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ContainerRecord {
    pub format: u32,
    /// The name, without the engine's leading `/`.
    pub name: String,
    pub id: String,
    /// The image as the container names it (`Config.Image`).
    pub image: String,
    /// The image's id (`sha256:…`), to find it again when the name moved or was removed.
    pub image_id: String,
    /// Running (or paused) when snapshotted.
    pub running: bool,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub mounts: Vec<MountRecord>,
    /// Networks the container was attached to; the first (its network mode) is restored.
    pub networks: Vec<String>,
    /// The top-most changed paths saved under `rootfs/`.
    pub files: Vec<String>,
    /// Top-most paths of the image the container had deleted (not restored: see docs).
    pub deleted: Vec<String>,
}

/// How a mount's data reaches the container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MountKind {
    Volume,
    Bind,
    Tmpfs,
    Other,
}

/// One mount of the container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct MountRecord {
    pub kind: MountKind,
    /// The volume's name (volumes only).
    pub name: Option<String>,
    /// The host path (binds only).
    pub source: Option<String>,
    pub target: String,
    pub read_only: bool,
    /// A volume the engine named itself (`-v /path`, an image's VOLUME); restored as a new
    /// anonymous volume.
    pub anonymous: bool,
    pub driver: Option<String>,
    #[serde(default)]
    pub driver_opts: HashMap<String, String>,
    #[serde(default)]
    pub labels: HashMap<String, String>,
    /// Its data is in the snapshot under `volumes/<name>/`.
    pub captured: bool,
}

impl MountRecord {
    /// The engine's name for a mount target: `/data` → `data`.
    pub fn target_base(&self) -> &str {
        self.target.trim_end_matches('/').rsplit('/').next().unwrap_or_default()
    }
}

/// A record from the engine's inspect answer; mounts' volume details are filled in by the
/// caller. `None` when the answer lacks the container's id, name or config.
pub fn from_inspect(inspect: &ContainerInspectResponse) -> Option<ContainerRecord> {
    let config = inspect.config.clone()?;
    let state = inspect.state.as_ref();
    let mounts = inspect
        .mounts
        .iter()
        .flatten()
        .filter_map(|m| {
            let kind = match m.typ.as_deref() {
                Some("volume") => MountKind::Volume,
                Some("bind") => MountKind::Bind,
                Some("tmpfs") => MountKind::Tmpfs,
                _ => MountKind::Other,
            };
            let name = m.name.clone().filter(|_| kind == MountKind::Volume);
            Some(MountRecord {
                kind,
                anonymous: name.as_deref().is_some_and(is_anonymous_name),
                name,
                source: m.source.clone().filter(|_| kind == MountKind::Bind),
                target: m.destination.clone()?,
                read_only: m.rw == Some(false),
                driver: m.driver.clone().filter(|d| !d.is_empty()),
                driver_opts: HashMap::new(),
                labels: HashMap::new(),
                captured: false,
            })
        })
        .collect();
    let mut networks: Vec<String> = inspect
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .map(|n| n.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    Some(ContainerRecord {
        format: RECORD_FORMAT,
        name: inspect.name.clone()?.trim_start_matches('/').to_string(),
        id: inspect.id.clone()?,
        image: config.image.clone().unwrap_or_default(),
        image_id: inspect.image.clone().unwrap_or_default(),
        running: state.is_some_and(|s| s.running == Some(true) || s.paused == Some(true)),
        host_config: inspect.host_config.clone().unwrap_or_default(),
        config,
        mounts,
        networks,
        files: Vec::new(),
        deleted: Vec::new(),
    })
}

/// Volume names the engine makes up for anonymous volumes: 64 hex digits.
fn is_anonymous_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The name a recorded named volume gets on restore.
pub fn restored_volume_name(name: &str, prefix: Option<&str>) -> String {
    format!("{}{name}", prefix.unwrap_or_default())
}

/// The create request for a container equivalent to `record`, from `image` (a name or id),
/// with named volumes renamed by `prefix`.
pub fn create_body(
    record: &ContainerRecord,
    image: &str,
    prefix: Option<&str>,
) -> serde_json::Result<ContainerCreateBody> {
    // Config and the create body share their fields; going through JSON carries all of them.
    let mut body: ContainerCreateBody = serde_json::from_value(serde_json::to_value(&record.config)?)?;
    body.image = Some(image.to_string());
    // The engine names a container's host after its id unless told otherwise; a new
    // container gets its own.
    if body
        .hostname
        .as_deref()
        .is_some_and(|h| record.id.starts_with(h) && !h.is_empty())
    {
        body.hostname = None;
    }
    let mut host = record.host_config.clone();
    host.container_id_file = None;
    let kept: Vec<Mount> = host
        .mounts
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| !matches!(m.typ, Some(MountType::BIND | MountType::VOLUME)))
        .collect();
    let mut mounts = kept;
    let mut binds = Vec::new();
    for m in &record.mounts {
        match m.kind {
            MountKind::Volume => mounts.push(Mount {
                target: Some(m.target.clone()),
                source: m
                    .name
                    .as_deref()
                    .filter(|_| !m.anonymous)
                    .map(|n| restored_volume_name(n, prefix)),
                typ: Some(MountType::VOLUME),
                read_only: Some(m.read_only),
                ..Default::default()
            }),
            // As `-v`, which creates a missing host directory (`--mount` would refuse).
            MountKind::Bind => binds.push(format!(
                "{}:{}{}",
                m.source.as_deref().unwrap_or_default(),
                m.target,
                if m.read_only { ":ro" } else { "" }
            )),
            MountKind::Tmpfs | MountKind::Other => {}
        }
    }
    host.binds = (!binds.is_empty()).then_some(binds);
    host.mounts = (!mounts.is_empty()).then_some(mounts);
    body.host_config = Some(host);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use bollard::models::{ContainerState, MountPoint, PortBinding};

    use super::*;

    fn inspect() -> ContainerInspectResponse {
        let json = serde_json::json!({
            "Id": "0123456789abcdef0123",
            "Name": "/web",
            "Image": "sha256:feed",
            "State": {"Running": true},
            "Config": {
                "Hostname": "0123456789ab",
                "Image": "demo:1",
                "Env": ["PORT=8080"],
                "Cmd": ["serve"],
                "ExposedPorts": {"8080/tcp": {}},
                "Labels": {"team": "a"}
            },
            "HostConfig": {
                "Binds": ["web-data:/data", "/srv/conf:/conf:ro"],
                "PortBindings": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]},
                "RestartPolicy": {"Name": "always"}
            },
            "Mounts": [
                {"Type": "volume", "Name": "web-data", "Destination": "/data", "Driver": "local", "RW": true},
                {"Type": "bind", "Source": "/srv/conf", "Destination": "/conf", "RW": false},
                {"Type": "volume", "Name": "a".repeat(64), "Destination": "/cache", "Driver": "local", "RW": true}
            ],
            "NetworkSettings": {"Networks": {"bridge": {}}}
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn the_record_keeps_what_makes_the_container() {
        let r = from_inspect(&inspect()).unwrap();
        assert_eq!(r.name, "web");
        assert_eq!(r.image, "demo:1");
        assert_eq!(r.image_id, "sha256:feed");
        assert!(r.running);
        assert_eq!(r.networks, vec!["bridge".to_string()]);
        assert_eq!(r.mounts.len(), 3);
        assert_eq!(r.mounts[0].kind, MountKind::Volume);
        assert!(!r.mounts[0].anonymous);
        assert_eq!(r.mounts[1].source.as_deref(), Some("/srv/conf"));
        assert!(r.mounts[1].read_only);
        assert!(r.mounts[2].anonymous);
        assert_eq!(r.mounts[0].target_base(), "data");
        // And it survives its own file format.
        let back: ContainerRecord = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back.config, r.config);
        assert_eq!(back.host_config, r.host_config);
    }

    #[test]
    fn the_create_body_renames_volumes_and_keeps_the_rest() {
        let r = from_inspect(&inspect()).unwrap();
        let body = create_body(&r, "demo:1", Some("copy-")).unwrap();
        assert_eq!(body.image.as_deref(), Some("demo:1"));
        assert_eq!(body.hostname, None, "the old id-derived hostname is dropped");
        assert_eq!(body.env, Some(vec!["PORT=8080".to_string()]));
        assert_eq!(body.exposed_ports, Some(vec!["8080/tcp".to_string()]));
        let host = body.host_config.unwrap();
        assert_eq!(host.binds, Some(vec!["/srv/conf:/conf:ro".to_string()]));
        let mounts = host.mounts.unwrap();
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[0].source.as_deref(), Some("copy-web-data"));
        assert_eq!(mounts[0].target.as_deref(), Some("/data"));
        assert_eq!(mounts[1].source, None, "anonymous volumes are made anew");
        let ports = host.port_bindings.unwrap();
        assert_eq!(
            ports["8080/tcp"],
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(String::new())
            }])
        );
    }

    #[test]
    fn a_stopped_container_is_recorded_as_stopped() {
        let mut i = inspect();
        i.state = Some(ContainerState {
            running: Some(false),
            ..Default::default()
        });
        i.mounts = Some(vec![MountPoint::default()]);
        let r = from_inspect(&i).unwrap();
        assert!(!r.running);
        assert!(r.mounts.is_empty(), "a mount without a target is dropped");
    }
}
