//! API tokens in the store: create, authenticate, list, revoke.
//!
//! Only the BLAKE3 hash of a secret is stored (see `auth` for why that suffices); the secret
//! itself exists once, in the return value of [`Store::create_token`]. The store also keeps the
//! one invariant access control depends on: there is always at least one admin token once the
//! first has been created, because nothing else can create tokens.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Store, StoreError, from_millis, now, to_millis};
use crate::auth::{Role, TokenInfo, generate_secret, hash_secret};
use crate::secret::Secret;

/// `last_used_at` is refreshed at most this often per token: every refresh is a durable
/// commit, and a dashboard polling every second should not cost an fsync per request.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

const COLUMNS: &str = "id, name, role, created_at, last_used_at";

fn token_row(row: &Row<'_>) -> rusqlite::Result<TokenInfo> {
    Ok(TokenInfo {
        id: row.get(0)?,
        name: row.get(1)?,
        role: row.get(2)?,
        created_at: from_millis(3, row.get(3)?)?,
        last_used_at: row.get::<_, Option<i64>>(4)?.map(|ms| from_millis(4, ms)).transpose()?,
    })
}

impl Store {
    /// Creates a token and returns it with its secret. The secret is not stored and cannot be
    /// shown again. Names are 1–64 characters of letters, digits, `.`, `_` and `-`.
    pub fn create_token(&self, name: &str, role: Role) -> Result<(TokenInfo, Secret), StoreError> {
        let (secret, hash) = generate_secret().map_err(StoreError::Random)?;
        let info = self.insert_token(name, role, &hash)?;
        Ok((info, secret))
    }

    /// Stores a token for a secret the caller generated (given by its hash), so bootstrap can
    /// write the secret to disk before the token exists (see `auth::bootstrap`).
    pub(crate) fn insert_token(&self, name: &str, role: Role, hash: &blake3::Hash) -> Result<TokenInfo, StoreError> {
        check_name(name)?;
        self.write("create a token", |tx| {
            let taken = tx
                .prepare_cached("SELECT 1 FROM tokens WHERE name = ?1")?
                .exists([name])?;
            if taken {
                return Err(StoreError::TokenExists { name: name.to_owned() }.into());
            }
            let created_at = now();
            let id = tx.query_row(
                "INSERT INTO tokens (name, role, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4)
                 RETURNING id",
                params![name, role, hash.as_bytes(), to_millis(created_at)],
                |row| row.get(0),
            )?;
            Ok(TokenInfo {
                id,
                name: name.to_owned(),
                role,
                created_at,
                last_used_at: None,
            })
        })
    }

    /// The token whose secret is `presented`, or `None` if no token matches (or `presented` is
    /// not shaped like a secret). Records the use in `last_used_at`.
    pub fn authenticate(&self, presented: &str) -> Result<Option<TokenInfo>, StoreError> {
        let Some(hash) = hash_secret(presented) else {
            return Ok(None);
        };
        self.write("authenticate a token", |tx| {
            let Some(mut info) = find_by_hash(tx, &hash)? else {
                return Ok(None);
            };
            let now = now();
            let stale_before = to_millis(now) - LAST_USED_RESOLUTION_MS;
            let touched = tx.execute(
                "UPDATE tokens SET last_used_at = ?2
                 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?3)",
                params![info.id, to_millis(now), stale_before],
            )?;
            if touched > 0 {
                info.last_used_at = Some(now);
            }
            Ok(Some(info))
        })
    }

    /// Whether `presented` is the secret of the token named `name`, without recording a use.
    pub(crate) fn token_secret_matches(&self, name: &str, presented: &str) -> Result<bool, StoreError> {
        let Some(hash) = hash_secret(presented) else {
            return Ok(false);
        };
        self.read("check a token", |conn| {
            Ok(find_by_hash(conn, &hash)?.is_some_and(|info| info.name == name))
        })
    }

    /// The token named `name`, if any.
    pub fn token(&self, name: &str) -> Result<Option<TokenInfo>, StoreError> {
        self.read("read a token", |conn| {
            let sql = format!("SELECT {COLUMNS} FROM tokens WHERE name = ?1");
            conn.query_row(&sql, [name], token_row).optional()
        })
    }

    /// All tokens, by name.
    pub fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        self.read("list tokens", |conn| {
            let sql = format!("SELECT {COLUMNS} FROM tokens ORDER BY name");
            conn.prepare(&sql)?.query_map([], token_row)?.collect()
        })
    }

    /// Deletes the token named `name`; returns `false` if there is none. Refuses to delete the
    /// last admin token, which would leave nobody able to manage tokens.
    pub fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        self.write("revoke a token", |tx| {
            let role: Option<Role> = tx
                .query_row("SELECT role FROM tokens WHERE name = ?1", [name], |row| row.get(0))
                .optional()?;
            match role {
                None => return Ok(false),
                Some(Role::Admin) => {
                    let admins: u64 =
                        tx.query_row("SELECT count(*) FROM tokens WHERE role = 'admin'", [], |row| row.get(0))?;
                    if admins <= 1 {
                        return Err(StoreError::LastAdminToken { name: name.to_owned() }.into());
                    }
                }
                Some(_) => {}
            }
            tx.execute("DELETE FROM tokens WHERE name = ?1", [name])?;
            Ok(true)
        })
    }
}

/// Compares `hash` with every stored hash in constant time. Scanning is fine: a host has a
/// handful of tokens, and it keeps the comparison out of SQL, where `=` may exit early.
fn find_by_hash(conn: &Connection, hash: &blake3::Hash) -> rusqlite::Result<Option<TokenInfo>> {
    let mut statement = conn.prepare_cached(&format!("SELECT {COLUMNS}, secret_hash FROM tokens"))?;
    let mut rows = statement.query([])?;
    let mut found = None;
    while let Some(row) = rows.next()? {
        let stored: [u8; 32] = row.get(5)?;
        if blake3::Hash::from_bytes(stored) == *hash {
            found = Some(token_row(row)?);
        }
    }
    Ok(found)
}

fn check_name(name: &str) -> Result<(), StoreError> {
    let reason = if name.is_empty() || name.len() > 64 {
        Some("it must be 1 to 64 characters long")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        Some("use only letters, digits, `.`, `_` and `-`")
    } else if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        Some("it must start with a letter or a digit")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(StoreError::InvalidTokenName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}
