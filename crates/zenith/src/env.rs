//! Every environment variable zenith reads, in one place (documented in docs/cli.md).

/// The repository location (same as `--repo`).
pub const ZENITH_REPO: &str = "ZENITH_REPO";
/// The repository password.
pub const ZENITH_PASSWORD: &str = "ZENITH_PASSWORD";
/// A file whose first line is the repository password.
pub const ZENITH_PASSWORD_FILE: &str = "ZENITH_PASSWORD_FILE";
/// The new password for `repo key add` / `repo key passwd`.
pub const ZENITH_NEW_PASSWORD: &str = "ZENITH_NEW_PASSWORD";
pub const ZENITH_NEW_PASSWORD_FILE: &str = "ZENITH_NEW_PASSWORD_FILE";
/// The other repository's password for `copy --to` and `init --copy-chunker-params`
/// (defaults to the main password).
pub const ZENITH_OTHER_PASSWORD: &str = "ZENITH_OTHER_PASSWORD";
pub const ZENITH_OTHER_PASSWORD_FILE: &str = "ZENITH_OTHER_PASSWORD_FILE";
/// Use cheap key derivation for new keys. For test suites only: it makes passwords easy to guess.
pub const ZENITH_INSECURE_TEST_KDF: &str = "ZENITH_INSECURE_TEST_KDF";

/// The daemon's data directory (same as `--data-dir`).
pub const ZENITH_DATA_DIR: &str = "ZENITH_DATA_DIR";
/// The daemon's API address (same as `--daemon`).
pub const ZENITH_DAEMON_URL: &str = "ZENITH_DAEMON_URL";
/// The API token the CLI sends to the daemon.
pub const ZENITH_TOKEN: &str = "ZENITH_TOKEN";
/// A file whose first line is the API token.
pub const ZENITH_TOKEN_FILE: &str = "ZENITH_TOKEN_FILE";

/// The seed's in-container variables for `zenith state`.
pub const STATE_DIRECTORY: &str = "STATE_DIRECTORY";
pub const SNAPSHOT_ENABLED: &str = "SNAPSHOT_ENABLED";
pub const STATE_SNAPSHOT_RETENTION: &str = "STATE_SNAPSHOT_RETENTION";
pub const RESTORE_ENABLED: &str = "RESTORE_ENABLED";

/// Read a variable, treating an empty value as unset.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A boolean variable: true unless it says false, 0, no or off.
pub fn flag(name: &str, default: bool) -> bool {
    match var(name) {
        None => default,
        Some(v) => !matches!(v.to_ascii_lowercase().as_str(), "false" | "0" | "no" | "off"),
    }
}
