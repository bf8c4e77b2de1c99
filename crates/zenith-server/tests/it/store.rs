//! The state store: revision numbering and pruning, durability across a crashed writer,
//! migrations, apps, replicas and the audit log.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use jiff::Timestamp;
use zenith_server::auth::Role;
use zenith_server::store::{AuditEntry, AuditResult, ReplicaRow, RevisionStatus, SCHEMA_VERSION, Store, StoreError};

use crate::temp_store;

fn deploy(store: &Store, app: &str, limit: usize) -> u64 {
    store
        .create_revision(app, r#"{"services":{}}"#, "blake3:00", "zenith.toml", limit)
        .unwrap()
}

fn kept(store: &Store, app: &str) -> Vec<u64> {
    store.revisions(app).unwrap().iter().map(|r| r.number).collect()
}

fn replica(id: &str, app: &str, revision: u64) -> ReplicaRow {
    ReplicaRow {
        id: id.to_owned(),
        app: app.to_owned(),
        service: "api".to_owned(),
        revision,
        port: Some(8080),
        record_json: r#"{"pid":42}"#.to_owned(),
        state: "running".to_owned(),
        started_at: Some(Timestamp::from_second(1_700_000_000).unwrap()),
        restarts: 2,
    }
}

fn entry(app: Option<&str>, action: &str) -> AuditEntry {
    AuditEntry {
        time: Timestamp::from_second(1_700_000_000).unwrap(),
        actor: Some("ci".to_owned()),
        role: Some(Role::Deployer),
        action: action.to_owned(),
        app: app.map(str::to_owned),
        target: app.unwrap_or("daemon").to_owned(),
        result: AuditResult::Ok,
        detail: String::new(),
    }
}

#[test]
fn revision_numbers_are_never_reused_after_pruning() {
    let (_dir, store) = temp_store();
    let numbers: Vec<u64> = (0..5).map(|_| deploy(&store, "web", 3)).collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5]);
    assert_eq!(kept(&store, "web"), [5, 4, 3]);
    assert_eq!(deploy(&store, "web", 3), 6);
    assert_eq!(kept(&store, "web"), [6, 5, 4]);
    let app = store.app("web").unwrap().unwrap();
    assert_eq!((app.desired_revision, app.last_revision), (Some(6), 6));
    // Each app counts on its own.
    assert_eq!(deploy(&store, "db", 3), 1);
}

#[test]
fn pruning_keeps_the_active_revision_and_revisions_with_replicas() {
    let (_dir, store) = temp_store();
    deploy(&store, "web", 2);
    store.set_active("web", 1).unwrap();
    deploy(&store, "web", 2);
    store.put_replica(&replica("web-api-2-0", "web", 2)).unwrap();
    for _ in 0..3 {
        deploy(&store, "web", 2);
    }
    assert_eq!(kept(&store, "web"), [5, 4, 2, 1]);
    store.remove_replica("web-api-2-0").unwrap();
    store.set_active("web", 5).unwrap();
    deploy(&store, "web", 2);
    assert_eq!(kept(&store, "web"), [6, 5]);
}

#[test]
fn a_new_revision_is_pending_and_desired() {
    let (_dir, store) = temp_store();
    let number = store.create_revision("web", "{}", "d1", "rollback of 3", 10).unwrap();
    let revision = store.revision("web", number).unwrap().unwrap();
    assert_eq!(revision.status, RevisionStatus::Pending);
    assert_eq!(revision.source, "rollback of 3");
    assert_eq!((revision.spec_json.as_str(), revision.digest.as_str()), ("{}", "d1"));
    store
        .set_revision_status("web", number, RevisionStatus::RolledBack, "canary failed")
        .unwrap();
    store.set_revision_snapshot("web", number, "snap-1").unwrap();
    let revision = store.revision("web", number).unwrap().unwrap();
    assert_eq!(revision.status, RevisionStatus::RolledBack);
    assert_eq!(revision.message, "canary failed");
    assert_eq!(revision.snapshot_id.as_deref(), Some("snap-1"));
}

#[test]
fn unknown_apps_and_revisions_are_none_on_read_and_named_on_write() {
    let (_dir, store) = temp_store();
    assert_eq!(store.app("ghost").unwrap(), None);
    assert_eq!(store.revision("ghost", 1).unwrap(), None);
    assert!(store.revisions("ghost").unwrap().is_empty());
    let err = store.set_app_status("ghost", "running", "").unwrap_err();
    assert!(
        matches!(err, StoreError::UnknownApp { ref app } if app == "ghost"),
        "{err}"
    );
    deploy(&store, "web", 10);
    let err = store.set_desired("web", 9).unwrap_err();
    assert!(matches!(err, StoreError::UnknownRevision { number: 9, .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "app `web` has no revision 9 (it may have been pruned from the history)"
    );
    let err = store
        .set_revision_status("web", 9, RevisionStatus::Failed, "")
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownRevision { number: 9, .. }), "{err}");
    let err = store.put_replica(&replica("x", "ghost", 1)).unwrap_err();
    assert!(matches!(err, StoreError::UnknownApp { .. }), "{err}");
}

#[test]
fn app_pointers_status_and_rollout_state() {
    let (_dir, store) = temp_store();
    deploy(&store, "web", 10);
    deploy(&store, "web", 10);
    store.set_active("web", 2).unwrap();
    store.set_desired("web", 1).unwrap();
    store.set_app_status("web", "progressing", "step 2 of 4").unwrap();
    store.set_rollout("web", Some(r#"{"step":2}"#)).unwrap();
    let app = store.app("web").unwrap().unwrap();
    assert_eq!((app.desired_revision, app.active_revision), (Some(1), Some(2)));
    assert_eq!(
        (app.status.as_str(), app.message.as_str()),
        ("progressing", "step 2 of 4")
    );
    assert_eq!(app.rollout_json.as_deref(), Some(r#"{"step":2}"#));
    store.set_rollout("web", None).unwrap();
    assert_eq!(store.app("web").unwrap().unwrap().rollout_json, None);
    deploy(&store, "api", 10);
    let names: Vec<String> = store.apps().unwrap().into_iter().map(|a| a.name).collect();
    assert_eq!(names, ["api", "web"]);
}

#[test]
fn replicas_upsert_list_and_go_with_their_app() {
    let (_dir, store) = temp_store();
    deploy(&store, "web", 10);
    deploy(&store, "api", 10);
    let mut first = replica("web-api-1-0", "web", 1);
    store.put_replica(&first).unwrap();
    store.put_replica(&replica("api-api-1-0", "api", 1)).unwrap();
    first.state = "crashed".to_owned();
    first.restarts = 3;
    first.port = None;
    store.put_replica(&first).unwrap();
    assert_eq!(store.replicas_of("web").unwrap(), [first.clone()]);
    assert!(store.set_replica_state("web-api-1-0", "ready").unwrap());
    assert!(!store.set_replica_state("ghost", "ready").unwrap());
    first.state = "ready".to_owned();
    assert_eq!(store.replicas_of("web").unwrap(), [first]);
    assert_eq!(store.replicas().unwrap().len(), 2);
    assert!(store.delete_app("web").unwrap());
    assert!(!store.delete_app("web").unwrap());
    assert!(store.replicas_of("web").unwrap().is_empty());
    assert!(store.revisions("web").unwrap().is_empty());
    assert!(store.remove_replica("api-api-1-0").unwrap());
    assert!(!store.remove_replica("api-api-1-0").unwrap());
}

#[test]
fn audit_is_newest_first_and_filters_by_app() {
    let (_dir, store) = temp_store();
    let seqs: Vec<u64> = [
        entry(Some("web"), "deploy"),
        entry(Some("api"), "deploy"),
        entry(None, "token.create"),
        entry(Some("web"), "rollback"),
    ]
    .iter()
    .map(|e| store.append_audit(e).unwrap())
    .collect();
    assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "{seqs:?}");
    let all = store.audit(10, None).unwrap();
    let actions: Vec<&str> = all.iter().map(|r| r.entry.action.as_str()).collect();
    assert_eq!(actions, ["rollback", "token.create", "deploy", "deploy"]);
    assert_eq!(all[0].seq, seqs[3]);
    assert_eq!(all[0].entry, entry(Some("web"), "rollback"));
    let web: Vec<u64> = store.audit(10, Some("web")).unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(web, [seqs[3], seqs[0]]);
    assert_eq!(store.audit(1, Some("web")).unwrap().len(), 1);
    assert_eq!(store.audit(2, None).unwrap()[1].seq, seqs[2]);
    // The trail outlives the app.
    store.delete_app("web").unwrap();
    assert_eq!(store.audit(10, Some("web")).unwrap().len(), 2);
}

#[test]
fn a_new_database_is_private_and_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    drop(Store::open(&path).unwrap());
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn an_empty_existing_file_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    std::fs::write(&path, b"").unwrap();
    let store = Store::open(&path).unwrap();
    assert_eq!(deploy(&store, "web", 10), 1);
}

#[test]
fn a_database_from_a_newer_zenith_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    drop(Store::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
    drop(conn);
    let err = Store::open(&path).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, StoreError::TooNew { .. }), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    let versions = format!("schema version {}", SCHEMA_VERSION + 1);
    assert!(message.contains(&versions), "{message}");
    assert!(
        message.contains(&format!("versions up to {SCHEMA_VERSION}")),
        "{message}"
    );
}

#[test]
fn committed_writes_survive_a_store_that_is_never_closed() {
    let (dir, store) = temp_store();
    deploy(&store, "web", 10);
    store.append_audit(&entry(Some("web"), "deploy")).unwrap();
    // No close, no checkpoint: the data lives only in the WAL.
    std::mem::forget(store);
    let reopened = Store::open(&dir.path().join("state.db")).unwrap();
    assert_eq!(kept(&reopened, "web"), [1]);
    assert_eq!(reopened.audit(10, None).unwrap().len(), 1);
}

/// Set by [`committed_writes_survive_an_aborted_process`] for the child it starts.
const CRASH_DB_ENV: &str = "ZENITH_TEST_CRASH_DB";

/// The child half of the crash test: writes, then dies without unwinding or closing anything.
/// Run on its own (no variable set) it does nothing.
#[test]
fn crash_child_writes_then_aborts() {
    let Some(path) = std::env::var_os(CRASH_DB_ENV) else {
        return;
    };
    let store = Store::open(Path::new(&path)).unwrap();
    deploy(&store, "web", 10);
    store.append_audit(&entry(Some("web"), "deploy")).unwrap();
    std::process::abort();
}

#[test]
fn committed_writes_survive_an_aborted_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["store::crash_child_writes_then_aborts", "--exact", "--nocapture"])
        .env(CRASH_DB_ENV, &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child should have aborted");
    let store = Store::open(&path).unwrap();
    assert_eq!(store.app("web").unwrap().unwrap().desired_revision, Some(1));
    assert_eq!(store.audit(10, Some("web")).unwrap().len(), 1);
}

#[test]
fn the_store_can_be_shared_across_threads() {
    fn assert_shareable<T: Clone + Send + Sync + 'static>() {}
    assert_shareable::<Store>();
    let (_dir, store) = temp_store();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || deploy(&store, "web", 100))
        })
        .collect();
    let mut numbers: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, [1, 2, 3, 4]);
}
