//! The Docker-only settings: `container_port`, `volumes`, `resources` and `health.image`. A
//! process service that sets them is refused rather than silently ignoring them.

use super::Validator;
use crate::config::ServiceConfig;
use crate::model::{ContainerSettings, RuntimeKind, VolumeMount, VolumeSource};

impl Validator<'_> {
    pub(super) fn container(&mut self, name: &str, s: &ServiceConfig, runtime: RuntimeKind) -> ContainerSettings {
        if runtime != RuntimeKind::Docker {
            let set = [
                ("container_port", s.container_port.is_some()),
                ("volumes", !s.volumes.is_empty()),
                ("resources", s.resources.is_some()),
                ("state_volumes", !s.state_volumes.is_empty()),
            ];
            for (field, _) in set.iter().filter(|(_, on)| *on) {
                self.error(
                    &["services", name, field],
                    "applies to containers only; set runtime = \"docker\" and an image, or remove it",
                );
            }
            return ContainerSettings::default();
        }
        let port = s.container_port.and_then(|p| {
            let p16 = u16::try_from(p).ok().filter(|p| *p > 0);
            if p16.is_none() {
                self.error(
                    &["services", name, "container_port"],
                    format!("must be between 1 and 65535, found {p}"),
                );
            }
            p16
        });
        let volumes: Vec<VolumeMount> = s
            .volumes
            .iter()
            .enumerate()
            .filter_map(|(i, v)| self.volume(name, i, v))
            .collect();
        let (mut nano_cpus, mut memory) = (None, None);
        if let Some(r) = &s.resources {
            if let Some(cpus) = r.cpus {
                if cpus.is_finite() && cpus > 0.0 && cpus <= 4096.0 {
                    nano_cpus = Some((cpus * 1e9).round() as u64);
                } else {
                    self.error(
                        &["services", name, "resources", "cpus"],
                        format!("must be a positive number of CPUs such as 0.5 or 2, found {cpus}"),
                    );
                }
            }
            memory = self.size(r.memory.as_deref(), &["services", name, "resources", "memory"]);
            if memory.is_some_and(|m| m < 6 * 1024 * 1024) {
                self.error(
                    &["services", name, "resources", "memory"],
                    "is below the 6 MiB the Docker engine accepts as a memory limit",
                );
            }
        }
        let state_volumes = self.state_volumes(name, &s.state_volumes, &volumes);
        ContainerSettings {
            port,
            volumes,
            nano_cpus,
            memory,
            state_volumes,
            volume_dirs: Default::default(),
        }
    }

    /// Each state volume must be a named volume the container mounts.
    fn state_volumes(&mut self, service: &str, names: &[String], volumes: &[VolumeMount]) -> Vec<String> {
        for (i, name) in names.iter().enumerate() {
            let mounted = volumes
                .iter()
                .any(|v| matches!(&v.source, VolumeSource::Volume(n) if n == name));
            if !mounted {
                let index = format!("[{i}]");
                self.error(
                    &["services", service, "state_volumes", &index],
                    format!("\"{name}\" is not a named volume of this service; add \"{name}:/path/inside\" to volumes"),
                );
            }
        }
        names.to_vec()
    }

    /// A container's state directories are host directories it mounts: the hooks snapshot and
    /// restore them on the host, and the replica sees them where they are mounted.
    pub(super) fn state_dirs_mounted(&mut self, service: &str, dirs: &[std::path::PathBuf], c: &ContainerSettings) {
        for (i, dir) in dirs.iter().enumerate() {
            let mounted = c
                .volumes
                .iter()
                .any(|v| matches!(&v.source, VolumeSource::Bind(host) if host == dir));
            if !mounted {
                let index = format!("[{i}]");
                self.error(
                    &["services", service, "state_dirs", &index],
                    format!(
                        "{} is not mounted into the container; add \"{}:/path/inside\" to volumes",
                        dir.display(),
                        dir.display()
                    ),
                );
            }
        }
    }

    /// `NAME:/target[:ro]` (a named volume) or `/host/dir:/target[:ro]` (a bind mount; a
    /// relative host path is taken from the spec's directory, as compose does).
    fn volume(&mut self, service: &str, i: usize, v: &str) -> Option<VolumeMount> {
        let index = format!("[{i}]");
        let path = ["services", service, "volumes", index.as_str()];
        let mut parts: Vec<&str> = v.split(':').collect();
        let read_only = match parts.len() {
            3 if matches!(parts[2], "ro" | "rw") => parts.pop() == Some("ro"),
            2 => false,
            _ => {
                self.error(
                    &path,
                    format!("\"{v}\" is not SOURCE:TARGET[:ro]; e.g. \"data:/var/lib/app\" or \"./conf:/etc/app:ro\""),
                );
                return None;
            }
        };
        let (source, target) = (parts[0], parts[1]);
        if !target.starts_with('/') {
            self.error(
                &path,
                format!("the target \"{target}\" must be an absolute path inside the container"),
            );
            return None;
        }
        let source = if source.starts_with('/') || source.starts_with('.') || source.starts_with('~') {
            if source.starts_with('~') {
                self.error(
                    &path,
                    "write the host path without ~ (absolute, or relative to the spec)",
                );
                return None;
            }
            VolumeSource::Bind(super::resolve(&self.base, source))
        } else if !source.is_empty()
            && source
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            VolumeSource::Volume(source.to_string())
        } else {
            self.error(
                &path,
                format!("\"{source}\" is neither a volume name (letters, digits, _ . -) nor a host path"),
            );
            return None;
        };
        Some(VolumeMount {
            source,
            target: target.to_string(),
            read_only,
        })
    }
}
