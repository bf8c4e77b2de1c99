//! Turning a replica into a container: the image check, the create body (env, ports, mounts,
//! limits, labels) and a create-then-start that leaves nothing behind when it fails.

use std::collections::HashMap;
use std::path::Path;

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, HostConfig, Mount, MountType, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{CreateContainerOptions, CreateImageOptions};
use futures_util::StreamExt;
use zenith_spec::model::{ContainerSettings, VolumeSource};

use super::{DAEMON_LABEL, REPLICA_LABEL, watch};
use crate::{ContainerSpec, REPLICA_ID_ENV, ReplicaSpec, SECRETS_DIR_ENV};

/// Where secrets appear inside a container, as with Docker Swarm.
pub const SECRETS_TARGET: &str = "/run/secrets";

/// Makes sure `image` is on the engine: it is used as is when present, pulled otherwise.
pub(super) async fn ensure_image(docker: &Docker, image: &str) -> Result<(), String> {
    match docker.inspect_image(image).await {
        Ok(_) => return Ok(()),
        Err(e) if watch::is_not_found(&e) => {}
        Err(e) => return Err(format!("cannot inspect image {image}: {e}")),
    }
    tracing::info!(image, "image not on the engine; pulling it");
    let options = CreateImageOptions {
        from_image: Some(image.to_string()),
        ..Default::default()
    };
    let mut pull = docker.create_image(Some(options), None, None);
    while let Some(step) = pull.next().await {
        if let Err(e) = step {
            return Err(format!(
                "image {image} is not on this Docker engine and pulling it failed: {e}; build or load it there (docker build, docker load), or fix the name"
            ));
        }
    }
    Ok(())
}

/// The create body of `spec`'s container.
pub(super) fn body(spec: &ReplicaSpec, c: &ContainerSpec, secrets_dir: &Path) -> ContainerCreateBody {
    let mut env = spec.env.clone();
    env.insert(REPLICA_ID_ENV.into(), spec.id.clone());
    let port = c.settings.port.or(c.host_port);
    if let Some(port) = port {
        env.insert("PORT".into(), port.to_string());
    }
    let mut mounts: Vec<Mount> = c
        .settings
        .volumes
        .iter()
        .map(|v| {
            let (typ, source) = match &v.source {
                VolumeSource::Volume(name) => (MountType::VOLUME, name.clone()),
                VolumeSource::Bind(path) => (MountType::BIND, path.display().to_string()),
            };
            Mount {
                typ: Some(typ),
                source: Some(source),
                target: Some(v.target.clone()),
                read_only: Some(v.read_only),
                ..Default::default()
            }
        })
        .collect();
    if !spec.secrets.is_empty() {
        env.insert(SECRETS_DIR_ENV.into(), SECRETS_TARGET.into());
        mounts.push(Mount {
            typ: Some(MountType::BIND),
            source: Some(secrets_dir.display().to_string()),
            target: Some(SECRETS_TARGET.into()),
            read_only: Some(true),
            ..Default::default()
        });
    }
    container_paths(&mut env, &c.settings);
    let mut labels: HashMap<String, String> = c.labels.clone().into_iter().collect();
    labels.insert(REPLICA_LABEL.into(), spec.id.clone());
    if let Some(marker) = spec.env.get("ZENITH_DAEMON_ID") {
        labels.insert(DAEMON_LABEL.into(), marker.clone());
    }
    let (exposed, bindings) = match (port, c.host_port) {
        (Some(port), Some(host)) => {
            let key = format!("{port}/tcp");
            let binding = PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(host.to_string()),
            };
            (
                Some(vec![key.clone()]),
                Some(HashMap::from([(key, Some(vec![binding]))])),
            )
        }
        _ => (None, None),
    };
    ContainerCreateBody {
        image: Some(c.image.clone()),
        cmd: (!spec.command.is_empty()).then(|| spec.command.clone()),
        env: Some(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        exposed_ports: exposed,
        host_config: Some(HostConfig {
            port_bindings: bindings,
            mounts: Some(mounts),
            nano_cpus: c.settings.nano_cpus.and_then(|n| i64::try_from(n).ok()),
            memory: c.settings.memory.and_then(|n| i64::try_from(n).ok()),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::NO),
                maximum_retry_count: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// State directories are host paths; inside the container they are where they are mounted.
fn container_paths(env: &mut std::collections::BTreeMap<String, String>, settings: &ContainerSettings) {
    let inside = |host: &str| -> String {
        settings
            .volumes
            .iter()
            .find_map(|v| match &v.source {
                VolumeSource::Bind(source) if Path::new(host) == source => Some(v.target.clone()),
                VolumeSource::Volume(name) if settings.volume_dirs.get(name).is_some_and(|d| Path::new(host) == d) => {
                    Some(v.target.clone())
                }
                _ => None,
            })
            .unwrap_or_else(|| host.to_string())
    };
    if let Some(dir) = env.get_mut("STATE_DIRECTORY") {
        *dir = inside(dir);
    }
    if let Some(dirs) = env.get_mut("ZENITH_STATE_DIRS") {
        *dirs = dirs.split(':').map(inside).collect::<Vec<_>>().join(":");
    }
}

/// Creates and starts the container; returns its id. A container that was created but could
/// not start is removed again.
pub(super) async fn create_and_start(docker: &Docker, name: &str, body: ContainerCreateBody) -> Result<String, String> {
    let options = CreateContainerOptions {
        name: Some(name.to_string()),
        ..Default::default()
    };
    let created = docker
        .create_container(Some(options), body)
        .await
        .map_err(|e| format!("cannot create container {name}: {}", watch::engine_message(&e)))?;
    if let Err(e) = docker.start_container(&created.id, None).await {
        watch::remove(docker, &created.id).await;
        return Err(format!("cannot start container {name}: {}", watch::engine_message(&e)));
    }
    Ok(created.id)
}
