//! Access control: roles, the actions the API offers, which role may do what, and the format
//! of API token secrets.
//!
//! A token secret is `zt_` followed by 64 hex digits: 32 bytes from the operating system's
//! CSPRNG. The database stores only a BLAKE3 hash of those bytes (in derive-key mode, so the
//! hash cannot be confused with any other BLAKE3 use in zenith). A fast hash is enough here:
//! slow KDFs such as argon2 exist to make guessing *low-entropy* passwords expensive, but a
//! 256-bit random secret cannot be guessed at any hashing speed, and recovering it from a
//! stolen hash would need a BLAKE3 preimage. Hashes are compared with `blake3::Hash`'s
//! constant-time equality. The token methods of the store are in `store/tokens.rs`; creating
//! the first admin token on a fresh install is in `auth/bootstrap.rs`.

mod bootstrap;

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use rusqlite::ToSql;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

pub use bootstrap::{ADMIN_TOKEN_FILE, ADMIN_TOKEN_NAME, BootstrapError, ensure_admin_token};

/// What a token may do. Ordered from most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including managing tokens and shutting the daemon down.
    Admin,
    /// Read, and change what runs: deploy, roll back and steer rollouts.
    Deployer,
    /// Read only: status, history, logs, metrics, audit.
    Viewer,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Deployer, Role::Viewer];

    /// The spelling used in the database, the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Deployer => "deployer",
            Role::Viewer => "viewer",
        }
    }

    /// Whether a token with this role may perform `action`.
    pub fn allows(self, action: Action) -> bool {
        match self {
            Role::Admin => true,
            Role::Deployer => !matches!(action, Action::ManageTokens | Action::Shutdown),
            Role::Viewer => action == Action::Read,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of `admin`, `deployer`, `viewer`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`: expected one of admin, deployer, viewer")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(text: &str) -> Result<Self, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| UnknownRole(text.to_owned()))
    }
}

impl ToSql for Role {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl FromSql for Role {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value
            .as_str()?
            .parse()
            .map_err(|err: UnknownRole| FromSqlError::Other(err.into()))
    }
}

/// Everything the API lets a caller do, at the granularity roles care about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Status, rollout history, logs, metrics, the audit log.
    Read,
    Deploy,
    Rollback,
    Promote,
    Abort,
    Pause,
    Resume,
    Retry,
    /// Create, list and revoke API tokens.
    ManageTokens,
    /// Stop the daemon.
    Shutdown,
}

impl Action {
    pub const ALL: [Action; 10] = [
        Action::Read,
        Action::Deploy,
        Action::Rollback,
        Action::Promote,
        Action::Abort,
        Action::Pause,
        Action::Resume,
        Action::Retry,
        Action::ManageTokens,
        Action::Shutdown,
    ];
}

/// What the store knows about a token. Never includes the secret or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: u64,
    pub name: String,
    pub role: Role,
    pub created_at: Timestamp,
    /// When the token last authenticated a request, to the minute.
    pub last_used_at: Option<Timestamp>,
}

/// Every token secret starts with this, so one pasted into the wrong place is recognizable
/// (and findable by secret scanners).
pub const TOKEN_PREFIX: &str = "zt_";

/// Separates token hashes from every other BLAKE3 use; changing it invalidates all tokens.
const HASH_CONTEXT: &str = "zenith 2025-01 api token secret v1";

/// A fresh random secret (`zt_` and 64 lowercase hex digits) with the hash to store for it.
pub(crate) fn generate_secret() -> Result<(Secret, blake3::Hash), getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let secret = Secret::new(format!("{TOKEN_PREFIX}{}", hex::encode(bytes)));
    Ok((secret, hash_bytes(&bytes)))
}

/// The hash stored for `presented`, or `None` if it is not shaped like a token secret (so a
/// malformed `Authorization` header costs no database work).
pub(crate) fn hash_secret(presented: &str) -> Option<blake3::Hash> {
    let digits = presented.trim().strip_prefix(TOKEN_PREFIX)?;
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(digits, &mut bytes).ok()?;
    Some(hash_bytes(&bytes))
}

fn hash_bytes(bytes: &[u8; 32]) -> blake3::Hash {
    blake3::Hasher::new_derive_key(HASH_CONTEXT).update(bytes).finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_table_covers_every_role_and_action() {
        use Action::*;
        let deployer = [Read, Deploy, Rollback, Promote, Abort, Pause, Resume, Retry];
        for action in Action::ALL {
            assert!(Role::Admin.allows(action), "admin {action:?}");
            assert_eq!(Role::Deployer.allows(action), deployer.contains(&action), "{action:?}");
            assert_eq!(Role::Viewer.allows(action), action == Read, "viewer {action:?}");
        }
    }

    #[test]
    fn roles_parse_and_print_the_same_way() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(serde_json::to_string(&role).unwrap(), format!("\"{role}\""));
        }
        let err = "root".parse::<Role>().unwrap_err().to_string();
        assert_eq!(err, "unknown role `root`: expected one of admin, deployer, viewer");
    }

    #[test]
    fn secrets_are_prefixed_random_and_hash_stably() {
        let (one, hash) = generate_secret().unwrap();
        let (two, _) = generate_secret().unwrap();
        assert_eq!(hash_secret(one.expose()), Some(hash));
        assert_ne!(one, two);
        assert!(one.expose().starts_with(TOKEN_PREFIX));
        assert_eq!(one.expose().len(), TOKEN_PREFIX.len() + 64);
        assert_eq!(hash_secret(one.expose()), hash_secret(one.expose()));
        assert_ne!(hash_secret(one.expose()), hash_secret(two.expose()));
        // A trailing newline from a token file or an uppercase copy still match.
        let upper = one.expose().to_uppercase().replacen("ZT_", TOKEN_PREFIX, 1);
        assert_eq!(hash_secret(&format!("{}\n", one.expose())), hash_secret(&upper));
    }

    #[test]
    fn malformed_secrets_have_no_hash() {
        for bad in ["", "zt_", "zt_abc", "xx_00", &format!("zt_{}", "g".repeat(64))] {
            assert_eq!(hash_secret(bad), None, "{bad:?}");
        }
    }
}
