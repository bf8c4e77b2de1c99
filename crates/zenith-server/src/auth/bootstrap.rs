//! The first admin token: on a fresh install the daemon mints an `admin` token and leaves its
//! secret in `<data dir>/admin.token` (mode 0600) for the operator to pick up.
//!
//! Two rules make this safe. The file is written before the token is stored, by a temp file
//! created 0600 and renamed into place, so a crash leaves either no admin token (the next start
//! tries again) or a complete, private file. And a later start never mints a replacement when
//! the file has gone missing: whoever can delete files in the data directory must not be able
//! to obtain admin rights by restarting the daemon.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::auth::{Role, generate_secret};
use crate::secret::Secret;
use crate::store::{Store, StoreError};

/// The file in the data directory that holds the bootstrap admin secret.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// The name of the token minted on first start.
pub const ADMIN_TOKEN_NAME: &str = "admin";

/// Why the daemon cannot vouch for its admin token file.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading or writing the token file failed; the message names the path.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("cannot read random bytes from the operating system for the admin token: {0}")]
    Random(getrandom::Error),
    #[error(
        "the admin token file {} is missing, but the `admin` token it held still exists, and a \
         replacement is never minted silently; with another admin token run \
         `zenith token create --role admin`, or delete the state database in the data directory \
         to start over",
        path.display()
    )]
    Missing { path: PathBuf },
    #[error(
        "the admin token file {} can be read or written by other users (mode {mode:04o}); \
         run `chmod 600 {}` and start again",
        path.display(),
        path.display()
    )]
    Insecure { path: PathBuf, mode: u32 },
    #[error(
        "the admin token file {} does not hold the secret of the `admin` token; restore the \
         original file, or delete it and revoke the `admin` token with another admin token",
        path.display()
    )]
    Mismatch { path: PathBuf },
    #[error("the admin token file {} is not a regular file", path.display())]
    NotAFile { path: PathBuf },
}

/// Makes sure an admin can get in, and says where the bootstrap secret is.
///
/// - No admin token in the store (first start, or the database was deleted): mints the `admin`
///   token, writes its secret to `<data_dir>/admin.token` (replacing any stale file) and
///   returns `Some(path)`.
/// - The `admin` token exists: checks that the file is present, private (no group or other
///   permission bits) and holds that token's secret, and returns `Some(path)`.
/// - The `admin` token was revoked while other admin tokens exist: returns `None`; any file
///   left behind holds a dead secret.
pub fn ensure_admin_token(store: &Store, data_dir: &Path) -> Result<Option<PathBuf>, BootstrapError> {
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    let tokens = store.list_tokens()?;
    if !tokens.iter().any(|token| token.role == Role::Admin) {
        let (secret, hash) = generate_secret().map_err(BootstrapError::Random)?;
        write_private(&path, &secret)?;
        store.insert_token(ADMIN_TOKEN_NAME, Role::Admin, &hash)?;
        return Ok(Some(path));
    }
    let bootstrap_token_exists = tokens.iter().any(|token| token.name == ADMIN_TOKEN_NAME);
    let text = match read_private(&path) {
        Ok(text) => text,
        Err(BootstrapError::Io(err)) if err.kind() == std::io::ErrorKind::NotFound => {
            return match bootstrap_token_exists {
                true => Err(BootstrapError::Missing { path }),
                false => Ok(None),
            };
        }
        Err(err) => return Err(err),
    };
    if !bootstrap_token_exists {
        return Ok(None);
    }
    match store.token_secret_matches(ADMIN_TOKEN_NAME, &text)? {
        true => Ok(Some(path)),
        false => Err(BootstrapError::Mismatch { path }),
    }
}

/// Reads the token file after checking, on the open handle, that only its owner can use it.
fn read_private(path: &Path) -> Result<String, BootstrapError> {
    let mut file = fs_err::File::open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(BootstrapError::NotAFile { path: path.to_owned() });
    }
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(BootstrapError::Insecure {
            path: path.to_owned(),
            mode,
        });
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut file, &mut text)?;
    Ok(text)
}

/// Replaces `path` with a file holding `secret`, atomically and durably. The temp file is born
/// 0600, so the secret is never readable by others, not even for an instant.
fn write_private(path: &Path, secret: &Secret) -> Result<(), BootstrapError> {
    use fs_err::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let temp = dir.join(format!(".{ADMIN_TOKEN_FILE}.tmp"));
    // Left over from a crash mid-write; it was never renamed, so nothing refers to it.
    match fs_err::remove_file(&temp) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err.into()),
        _ => {}
    }
    let written = (|| {
        let mut file = fs_err::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        writeln!(file, "{}", secret.expose())?;
        file.sync_all()?;
        fs_err::rename(&temp, path)?;
        // The rename is durable only once the directory entry is on disk.
        fs_err::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs_err::remove_file(&temp);
    }
    Ok(written?)
}
