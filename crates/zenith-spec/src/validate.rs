//! Validation: [`FileConfig`] → [`AppSpec`]. Applies the defaults, resolves relative paths
//! against the spec's directory, and checks every rule that serde cannot express. It collects
//! every error instead of stopping at the first, each one placed at its field's line and column.
//! Per-service sections live in `validate/`: health and restart, update strategies, analysis.

mod analysis;
mod container;
mod sections;
mod state;
mod update;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::config::{CommandLine, FileConfig, HumanDuration, ServiceConfig};
use crate::error::{SpecError, SpecErrors};
use crate::locate::Locator;
use crate::model::{AppSpec, Probe, RuntimeKind, ServiceSpec};
use crate::parse::ParseOptions;

/// Variables the runtime sets for every replica; a spec that set them would be overridden.
const RESERVED_ENV: [&str; 2] = ["PORT", "ZENITH_SECRETS_DIR"];

pub(crate) fn build(
    cfg: &FileConfig,
    origin: &Path,
    locator: &Locator<'_>,
    options: &ParseOptions,
) -> Result<AppSpec, SpecErrors> {
    let mut v = Validator {
        origin,
        locator,
        base: base_dir(origin),
        check_files: options.check_files,
        errors: Vec::new(),
    };
    let spec = v.app(cfg);
    if v.errors.is_empty() {
        return Ok(spec);
    }
    v.errors.sort_by_key(|e| (e.line, e.column));
    Err(SpecErrors(v.errors))
}

/// Adds the tables of a `retention.toml` (at `origin`) to `spec`, loaded from `spec_file`.
pub(crate) fn merge_retention(
    spec: &mut AppSpec,
    cfg: &crate::config::RetentionConfig,
    origin: &Path,
    locator: &Locator<'_>,
    spec_file: &Path,
) -> Result<(), SpecErrors> {
    let mut v = Validator {
        origin,
        locator,
        base: base_dir(spec_file),
        check_files: false,
        errors: Vec::new(),
    };
    let schedules = v.schedules(&cfg.schedules, &spec.services);
    for s in &schedules {
        if spec.schedules.iter().any(|x| x.snapshot_type == s.snapshot_type) {
            let msg = format!(
                "the spec {} declares [schedules.{}] too; keep it in one file",
                spec_file.display(),
                s.snapshot_type
            );
            v.error(&["schedules", s.snapshot_type.as_str()], msg);
        }
    }
    let drill = v.drill(cfg.drill.as_ref());
    if drill.is_some() && spec.drill.is_some() {
        let msg = format!(
            "the spec {} has a [drill] table too; keep it in one file",
            spec_file.display()
        );
        v.error(&["drill"], msg);
    }
    if cfg.health.is_some() && spec.health != crate::model::HealthThresholds::default() {
        let msg = format!(
            "the spec {} has a [health] table too; keep it in one file",
            spec_file.display()
        );
        v.error(&["health"], msg);
    }
    let health = cfg.health.as_ref().map(|h| v.health_thresholds(Some(h)));
    if !v.errors.is_empty() {
        v.errors.sort_by_key(|e| (e.line, e.column));
        return Err(SpecErrors(v.errors));
    }
    spec.schedules.extend(schedules);
    spec.schedules.sort_by(|a, b| a.snapshot_type.cmp(&b.snapshot_type));
    if drill.is_some() {
        spec.drill = drill;
    }
    if let Some(h) = health {
        spec.health = h;
    }
    Ok(())
}

/// `[a-z0-9][a-z0-9-]{0,62}`: safe in paths, container names, DNS labels and URLs.
pub(crate) fn is_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

const NAME_RULE: &str = "use 1 to 63 lowercase letters, digits and '-', starting with a letter or digit";

/// The directory relative paths are resolved against, made absolute without touching the
/// file system (the spec may be checked on a machine where it will not run).
fn base_dir(origin: &Path) -> PathBuf {
    let abs = std::path::absolute(origin).unwrap_or_else(|_| origin.to_path_buf());
    abs.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// `base/./a/../b` → `base/b`, lexically: the model promises clean absolute paths.
fn resolve(base: &Path, rel: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in base.join(rel).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

pub(super) struct Validator<'a> {
    origin: &'a Path,
    locator: &'a Locator<'a>,
    base: PathBuf,
    check_files: bool,
    errors: Vec<SpecError>,
}

impl Validator<'_> {
    pub(super) fn error(&mut self, path: &[&str], message: impl Into<String>) {
        let (line, column) = self.locator.find(path);
        self.errors.push(SpecError {
            file: self.origin.to_path_buf(),
            line,
            column,
            field: crate::locate::join(path),
            message: message.into(),
        });
    }

    /// A count with a lower bound; `why` explains the bound to the user.
    pub(super) fn count(&mut self, value: Option<i64>, default: u32, min: u32, path: &[&str], why: &str) -> u32 {
        match value {
            None => default,
            Some(n) if n >= i64::from(min) && n <= i64::from(u32::MAX) => n as u32,
            Some(n) => {
                self.error(path, format!("must be between {min} and {}{why}, found {n}", u32::MAX));
                default
            }
        }
    }

    /// A duration that must not be zero (a zero interval or deadline would spin or fail at once).
    pub(super) fn positive(&mut self, value: Option<HumanDuration>, default: Duration, path: &[&str]) -> Duration {
        match value {
            None => default,
            Some(HumanDuration(d)) if d.is_zero() => {
                self.error(path, "must be longer than 0s");
                default
            }
            Some(HumanDuration(d)) => d,
        }
    }

    pub(super) fn command(&mut self, cmd: &CommandLine, path: &[&str]) -> Vec<String> {
        if cmd.is_empty() {
            self.error(
                path,
                "is empty; give a command line string or an argv array such as [\"./run\", \"--flag\"]",
            );
        }
        cmd.to_argv()
    }

    fn app(&mut self, cfg: &FileConfig) -> AppSpec {
        if !is_name(&cfg.app.name) {
            self.error(
                &["app", "name"],
                format!("invalid app name \"{}\": {NAME_RULE}", cfg.app.name),
            );
        }
        let revision_history_limit = self.count(
            cfg.app.revision_history_limit,
            10,
            1,
            &["app", "revision_history_limit"],
            " (the running revision is always kept)",
        );
        if cfg.services.0.is_empty() {
            self.error(&["services"], "no services: declare at least one [services.NAME] table");
        }
        let mut ports: BTreeMap<u16, String> = BTreeMap::new();
        let services = cfg
            .services
            .0
            .iter()
            .map(|(name, s)| self.service(name, s, &mut ports))
            .collect::<Vec<_>>();
        let schedules = self.schedules(&cfg.schedules, &services);
        AppSpec {
            name: cfg.app.name.clone(),
            revision_history_limit,
            drill: self.drill(cfg.drill.as_ref()),
            health: self.health_thresholds(cfg.health.as_ref()),
            services,
            schedules,
        }
    }

    fn service(&mut self, name: &str, s: &ServiceConfig, ports: &mut BTreeMap<u16, String>) -> ServiceSpec {
        if !is_name(name) {
            self.error(
                &["services", name],
                format!("invalid service name \"{name}\": {NAME_RULE}"),
            );
        }
        let runtime = s.runtime.unwrap_or(RuntimeKind::Process);
        match (runtime, &s.image, &s.command) {
            (RuntimeKind::Process, Some(_), _) => self.error(
                &["services", name, "image"],
                "image needs runtime = \"docker\"; set it, or remove image to run a local process",
            ),
            (RuntimeKind::Process, None, None) => self.error(
                &["services", name, "command"],
                "missing: a process service needs a command (or set runtime = \"docker\" and an image)",
            ),
            (RuntimeKind::Docker, None, _) => self.error(
                &["services", name, "image"],
                "missing: runtime = \"docker\" needs an image, e.g. image = \"nginx:1.27\"",
            ),
            (RuntimeKind::Docker, Some(img), _) if img.trim().is_empty() => self.error(
                &["services", name, "image"],
                "is empty; name an image, e.g. \"nginx:1.27\"",
            ),
            _ => {}
        }
        let command = match &s.command {
            Some(c) => self.command(c, &["services", name, "command"]),
            None => Vec::new(),
        };
        let port = s.port.and_then(|p| self.port(name, p, ports));
        if (!s.state_dirs.is_empty() || !s.state_volumes.is_empty()) && s.env.contains_key("STATE_DIRECTORY") {
            self.error(
                &["services", name, "env", "STATE_DIRECTORY"],
                "is set by zenith to the first of state_dirs (a restore drill points it elsewhere); remove it",
            );
        }
        let health = s.health.as_ref().map(|h| self.health(name, h));
        if runtime != RuntimeKind::Docker && health.as_ref().is_some_and(|h| h.probe == Probe::Image) {
            self.error(
                &["services", name, "health", "image"],
                "only a container has an image HEALTHCHECK; use http, tcp or exec for a process",
            );
        }
        let container = self.container(name, s, runtime);
        let state_dirs = self.state_dirs(name, &s.state_dirs);
        if runtime == RuntimeKind::Docker {
            self.state_dirs_mounted(name, &state_dirs, &container);
        }
        ServiceSpec {
            container,
            name: name.to_string(),
            runtime,
            image: s.image.clone(),
            command,
            workdir: resolve(&self.base, s.workdir.as_deref().unwrap_or(".")),
            replicas: self.count(
                s.replicas,
                1,
                0,
                &["services", name, "replicas"],
                " (0 keeps it scaled down)",
            ),
            env: self.env(name, &s.env),
            secrets: self.secrets(name, &s.secrets),
            state_dirs,
            state: self.state_hooks(
                name,
                s.state.as_ref(),
                !s.state_dirs.is_empty() || !s.state_volumes.is_empty(),
            ),
            port,
            health,
            restart: self.restart(name, s.restart.as_ref()),
            update: self.update(name, s.update.as_ref(), s.port.is_some()),
            pre_stop: s
                .pre_stop
                .as_ref()
                .map(|c| self.command(c, &["services", name, "pre_stop"])),
            stop_grace: s.stop_grace.map_or(Duration::from_secs(10), |d| d.0),
            drain_timeout: s.drain_timeout.map_or(Duration::from_secs(30), |d| d.0),
        }
    }

    fn port(&mut self, service: &str, port: i64, ports: &mut BTreeMap<u16, String>) -> Option<u16> {
        let path = ["services", service, "port"];
        let Some(p) = u16::try_from(port).ok().filter(|p| *p > 0) else {
            self.error(&path, format!("must be between 1 and 65535, found {port}"));
            return None;
        };
        if let Some(other) = ports.get(&p) {
            let msg = format!("port {p} is already the port of service `{other}`; give each service its own port");
            self.error(&path, msg);
        } else {
            ports.insert(p, service.to_string());
        }
        Some(p)
    }

    fn env(&mut self, service: &str, env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        for (key, value) in env {
            let path = ["services", service, "env", key.as_str()];
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                self.error(&path, "invalid variable name: it must be non-empty, without '=' or NUL");
            } else if RESERVED_ENV.contains(&key.as_str()) {
                self.error(&path, format!("{key} is set by zenith for every replica; remove it"));
            } else if value.contains('\0') {
                self.error(
                    &path,
                    "the value contains a NUL byte, which no process environment can hold",
                );
            }
        }
        env.clone()
    }

    fn secrets(&mut self, service: &str, secrets: &BTreeMap<String, String>) -> BTreeMap<String, PathBuf> {
        let mut out = BTreeMap::new();
        for (name, file) in secrets {
            let path = ["services", service, "secrets", name.as_str()];
            // The name becomes a file name in the replica's secrets directory.
            let safe = !name.is_empty()
                && !name.starts_with('.')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !safe {
                self.error(
                    &path,
                    format!(
                        "invalid secret name \"{name}\": use letters, digits, '_', '-' and '.', not starting with '.'"
                    ),
                );
            }
            let resolved = resolve(&self.base, file);
            if self.check_files
                && let Err(e) = std::fs::File::open(&resolved).and_then(|f| f.metadata()).and_then(|m| {
                    if m.is_dir() {
                        Err(std::io::Error::other("it is a directory"))
                    } else {
                        Ok(())
                    }
                })
            {
                self.error(
                    &path,
                    format!(
                        "cannot read secret file {}: {e}; create it with the secret's value or fix the path",
                        resolved.display()
                    ),
                );
            }
            out.insert(name.clone(), resolved);
        }
        out
    }

    fn state_dirs(&mut self, service: &str, dirs: &[String]) -> Vec<PathBuf> {
        for (i, d) in dirs.iter().enumerate() {
            if d.trim().is_empty() {
                let index = format!("[{i}]");
                self.error(
                    &["services", service, "state_dirs", &index],
                    "is empty; name a directory",
                );
            }
        }
        dirs.iter().map(|d| resolve(&self.base, d)).collect()
    }
}
