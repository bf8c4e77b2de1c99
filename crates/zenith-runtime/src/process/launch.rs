//! Preparing a replica's process: its run directory, the secrets copied in as 0400 files, the
//! append-only output log, and a `Command` with a clean environment. The daemon's own
//! environment (tokens, credentials) never reaches a replica: only a handful of neutral
//! variables are inherited, then the spec's own.

use std::fs::Permissions;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use fs_err::os::unix::fs::OpenOptionsExt;
use tokio::process::Command;

use crate::{ReplicaSpec, RuntimeError};

/// Variables inherited from the daemon's environment; everything else is dropped.
pub const INHERITED_ENV: [&str; 6] = ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER"];
/// Set for every replica and exec: the directory holding the replica's secret files.
pub const SECRETS_DIR_ENV: &str = "ZENITH_SECRETS_DIR";
/// Set for every replica and exec: the replica's id.
pub const REPLICA_ID_ENV: &str = "ZENITH_REPLICA_ID";

/// `<run_dir>/<id>`: everything the replica owns on disk.
pub(crate) fn replica_dir(spec: &ReplicaSpec) -> PathBuf {
    spec.run_dir.join(&spec.id)
}

pub(crate) fn secrets_dir(spec: &ReplicaSpec) -> PathBuf {
    replica_dir(spec).join("secrets")
}

pub(crate) fn log_path(spec: &ReplicaSpec) -> PathBuf {
    replica_dir(spec).join("output.log")
}

/// Builds the command for `argv` in the replica's environment, in its own process group.
pub(crate) fn command(spec: &ReplicaSpec, argv: &[String]) -> Option<Command> {
    let (program, args) = argv.split_first()?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(&spec.workdir)
        .env_clear()
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(false);
    for name in INHERITED_ENV {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
    cmd.envs(&spec.env)
        .env(SECRETS_DIR_ENV, secrets_dir(spec))
        .env(REPLICA_ID_ENV, &spec.id);
    Some(cmd)
}

/// Creates `<run_dir>/<id>/secrets` (0700) and copies every secret into it (0400). On error the
/// secrets directory is removed again, so a failed start leaves no copy of any secret behind.
pub(crate) fn install_secrets(spec: &ReplicaSpec) -> Result<(), RuntimeError> {
    let dir = secrets_dir(spec);
    let files_error = |path: &Path, source: io::Error| RuntimeError::Files {
        id: spec.id.clone(),
        path: path.to_path_buf(),
        source,
    };
    fs_err::create_dir_all(&dir).map_err(|e| files_error(&dir, e))?;
    fs_err::set_permissions(&dir, Permissions::from_mode(0o700)).map_err(|e| files_error(&dir, e))?;
    let result = spec
        .secrets
        .iter()
        .try_for_each(|(name, source)| install_secret(spec, &dir, name, source));
    if result.is_err()
        && let Err(e) = fs_err::remove_dir_all(&dir)
    {
        tracing::warn!(replica = %spec.id, error = %e, "could not remove a partial secrets directory");
    }
    result
}

fn install_secret(spec: &ReplicaSpec, dir: &Path, name: &str, source: &Path) -> Result<(), RuntimeError> {
    let secret_error = |source_err: io::Error| RuntimeError::Secret {
        id: spec.id.clone(),
        name: name.to_string(),
        path: source.to_path_buf(),
        source: source_err,
    };
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(secret_error(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a secret name must be a plain file name",
        )));
    }
    let contents = fs_err::read(source).map_err(secret_error)?;
    let target = dir.join(name);
    // A file left by an earlier start of the same id is read-only: replace it, do not open it.
    match fs_err::remove_file(&target) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(secret_error(e)),
    }
    let mut file = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(&target)
        .map_err(secret_error)?;
    io::Write::write_all(&mut file, &contents).map_err(secret_error)?;
    tracing::debug!(replica = %spec.id, secret = name, "secret installed");
    Ok(())
}

/// Opens `<run_dir>/<id>/output.log` for appending and returns it as stdout and stderr. The
/// replica holds its own O_APPEND descriptors, so it keeps logging if the daemon dies and a
/// copy-truncate rotation never leaves a hole.
pub(crate) fn open_log(spec: &ReplicaSpec) -> Result<(Stdio, Stdio), RuntimeError> {
    let path = log_path(spec);
    let files_error = |source: io::Error| RuntimeError::Files {
        id: spec.id.clone(),
        path: path.clone(),
        source,
    };
    let file = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(&path)
        .map_err(files_error)?;
    let stderr = file.try_clone().map_err(files_error)?;
    Ok((file.into_file().into(), stderr.into_file().into()))
}
