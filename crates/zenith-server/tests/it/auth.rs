//! API tokens in the store and the bootstrap admin token file.

use std::os::unix::fs::PermissionsExt;

use zenith_server::auth::{ADMIN_TOKEN_FILE, BootstrapError, Role, TOKEN_PREFIX, ensure_admin_token};
use zenith_server::store::{Store, StoreError};

use crate::temp_store;

#[test]
fn a_created_token_authenticates_and_a_wrong_one_does_not() {
    let (_dir, store) = temp_store();
    let (info, secret) = store.create_token("ci", Role::Deployer).unwrap();
    assert_eq!(
        (info.name.as_str(), info.role, info.last_used_at),
        ("ci", Role::Deployer, None)
    );
    assert!(secret.expose().starts_with(TOKEN_PREFIX));

    let found = store.authenticate(secret.expose()).unwrap().unwrap();
    assert_eq!((found.id, found.role), (info.id, Role::Deployer));
    assert!(found.last_used_at.is_some());
    assert_eq!(store.token("ci").unwrap().unwrap().last_used_at, found.last_used_at);

    let (_, other) = store.create_token("other", Role::Viewer).unwrap();
    assert_ne!(other, secret);
    let mut wrong = secret.expose().to_owned();
    let last = if wrong.ends_with('0') { "1" } else { "0" };
    wrong.replace_range(wrong.len() - 1.., last);
    for presented in [wrong.as_str(), "", "zt_", "Bearer x", &secret.expose()[3..]] {
        assert_eq!(store.authenticate(presented).unwrap(), None, "{presented:?}");
    }
}

#[test]
fn token_names_are_unique_and_checked() {
    let (_dir, store) = temp_store();
    store.create_token("ci", Role::Viewer).unwrap();
    let err = store.create_token("ci", Role::Admin).unwrap_err();
    assert!(matches!(err, StoreError::TokenExists { .. }), "{err}");
    for bad in ["", "-x", "has space", "a/b", &"n".repeat(65)] {
        let err = store.create_token(bad, Role::Viewer).unwrap_err();
        assert!(matches!(err, StoreError::InvalidTokenName { .. }), "{bad:?}: {err}");
    }
    let names: Vec<String> = store.list_tokens().unwrap().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["ci"]);
}

#[test]
fn revoking_works_but_never_removes_the_last_admin() {
    let (_dir, store) = temp_store();
    let (_, first) = store.create_token("root", Role::Admin).unwrap();
    let (_, ci) = store.create_token("ci", Role::Deployer).unwrap();
    assert!(store.revoke_token("ci").unwrap());
    assert!(!store.revoke_token("ci").unwrap());
    assert_eq!(store.authenticate(ci.expose()).unwrap(), None);

    let err = store.revoke_token("root").unwrap_err();
    assert!(matches!(err, StoreError::LastAdminToken { .. }), "{err}");
    assert!(err.to_string().contains("zenith token create --role admin"), "{err}");
    assert!(store.authenticate(first.expose()).unwrap().is_some());

    store.create_token("second", Role::Admin).unwrap();
    assert!(store.revoke_token("root").unwrap());
    let err = store.revoke_token("second").unwrap_err();
    assert!(matches!(err, StoreError::LastAdminToken { .. }), "{err}");
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_first_start_writes_a_private_admin_token_and_later_starts_keep_it() {
    let (dir, store) = temp_store();
    let path = ensure_admin_token(&store, dir.path()).unwrap().unwrap();
    assert_eq!(path, dir.path().join(ADMIN_TOKEN_FILE));
    assert_eq!(mode(&path), 0o600);
    let secret = std::fs::read_to_string(&path).unwrap();
    let admin = store.authenticate(&secret).unwrap().unwrap();
    assert_eq!((admin.name.as_str(), admin.role), ("admin", Role::Admin));

    assert_eq!(ensure_admin_token(&store, dir.path()).unwrap(), Some(path.clone()));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), secret);
    assert_eq!(store.list_tokens().unwrap().len(), 1);
    // No temp file is left beside it.
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        4,
        "state.db, -wal, -shm, token"
    );
}

#[test]
fn a_readable_token_file_is_refused_with_the_fix() {
    let (dir, store) = temp_store();
    let path = ensure_admin_token(&store, dir.path()).unwrap().unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = ensure_admin_token(&store, dir.path()).unwrap_err();
    assert!(matches!(err, BootstrapError::Insecure { mode: 0o644, .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains(&format!("chmod 600 {}", path.display())), "{message}");
}

#[test]
fn a_missing_token_file_is_an_error_not_a_new_token() {
    let (dir, store) = temp_store();
    let path = ensure_admin_token(&store, dir.path()).unwrap().unwrap();
    std::fs::remove_file(&path).unwrap();
    let err = ensure_admin_token(&store, dir.path()).unwrap_err();
    assert!(matches!(err, BootstrapError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("zenith token create --role admin"), "{err}");
    assert!(!path.exists());
    assert_eq!(store.list_tokens().unwrap().len(), 1);
}

#[test]
fn a_token_file_with_another_secret_is_refused() {
    let (dir, store) = temp_store();
    let path = ensure_admin_token(&store, dir.path()).unwrap().unwrap();
    let (_, viewer) = store.create_token("viewer", Role::Viewer).unwrap();
    std::fs::write(&path, viewer.expose()).unwrap();
    let err = ensure_admin_token(&store, dir.path()).unwrap_err();
    assert!(matches!(err, BootstrapError::Mismatch { .. }), "{err}");
}

#[test]
fn a_fresh_database_replaces_a_stale_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let old = Store::open(&dir.path().join("old.db")).unwrap();
    let path = ensure_admin_token(&old, dir.path()).unwrap().unwrap();
    let stale = std::fs::read_to_string(&path).unwrap();

    let fresh = Store::open(&dir.path().join("fresh.db")).unwrap();
    assert_eq!(ensure_admin_token(&fresh, dir.path()).unwrap(), Some(path.clone()));
    let secret = std::fs::read_to_string(&path).unwrap();
    assert_ne!(secret, stale);
    assert!(fresh.authenticate(&secret).unwrap().is_some());
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn a_revoked_bootstrap_token_is_not_recreated() {
    let (dir, store) = temp_store();
    let path = ensure_admin_token(&store, dir.path()).unwrap().unwrap();
    store.create_token("alice", Role::Admin).unwrap();
    store.revoke_token("admin").unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(ensure_admin_token(&store, dir.path()).unwrap(), None);
    assert!(!path.exists());
    assert!(store.token("admin").unwrap().is_none());
}
