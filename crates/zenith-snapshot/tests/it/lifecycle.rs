//! Forget, prune and copy: data nobody uses goes, everything still referenced stays intact.

use zenith_snapshot::Repository;
use zenith_snapshot::copy::copy;
use zenith_snapshot::crypto::KdfParams;
use zenith_snapshot::progress::NoProgress;
use zenith_snapshot::prune::{PruneOptions, prune};
use zenith_snapshot::repo::InitOptions;
use zenith_snapshot::verify::{ReadData, verify};

use crate::common::*;

fn dir_size(p: &std::path::Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        total += if m.is_dir() { dir_size(&e.path()) } else { m.len() };
    }
    total
}

#[test]
fn prune_frees_forgotten_data_and_keeps_the_rest_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let dir = tmp.path().join("repo");
    let repo = init_repo(&dir);
    std::fs::write(src.join("keep"), noise(2_000_000, 1)).unwrap();
    std::fs::write(src.join("temp"), noise(3_000_000, 2)).unwrap();
    let old = snapshot(&repo, &[&src]).snapshot;
    std::fs::remove_file(src.join("temp")).unwrap();
    let new = snapshot(&repo, &[&src]).snapshot;

    let dry = prune(
        &repo,
        &PruneOptions {
            dry_run: true,
            ..Default::default()
        },
        &NoProgress,
    )
    .unwrap();
    assert!(dry.is_noop(), "everything is still referenced: {dry:?}");
    repo.remove_snapshot(&old.id).unwrap();
    let before = dir_size(&dir);
    let dry = prune(
        &repo,
        &PruneOptions {
            dry_run: true,
            ..Default::default()
        },
        &NoProgress,
    )
    .unwrap();
    assert!(!dry.is_noop());
    assert_eq!(dir_size(&dir), before, "a dry run changes nothing");
    let plan = prune(&repo, &PruneOptions::default(), &NoProgress).unwrap();
    assert!(plan.bytes_freed >= 2_900_000, "{plan:?}");
    assert!(dir_size(&dir) < before - 2_900_000);

    let repo = Repository::open(&dir, &password()).unwrap();
    let report = verify(&repo, &[], ReadData::All, &NoProgress).unwrap();
    assert!(report.ok(), "{:?}", report.errors);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let out = tmp.path().join("out");
    restore_to(&repo, &new, &out);
    assert_same_tree(&src, &out);
}

#[test]
fn copy_moves_snapshots_with_and_without_shared_chunking() {
    let tmp = tempfile::tempdir().unwrap();
    let src_dir = tmp.path().join("src");
    std::fs::create_dir(&src_dir).unwrap();
    rich_tree(&src_dir);
    let a = init_repo(&tmp.path().join("a"));
    let snap = snapshot(&a, &[&src_dir]).snapshot;
    let opts = InitOptions {
        kdf: KdfParams::insecure_for_tests(),
        ..Default::default()
    };
    let same = Repository::init(&tmp.path().join("same"), &password(), &opts, Some(&a)).unwrap();
    let other = Repository::init(&tmp.path().join("other"), &password(), &opts, None).unwrap();
    for (dst, rechunked) in [(&same, false), (&other, true)] {
        let r = copy(
            &a,
            dst,
            std::slice::from_ref(&snap),
            std::time::Duration::ZERO,
            &NoProgress,
        )
        .unwrap();
        assert_eq!(r.rechunked, rechunked);
        assert_eq!(r.copied.len(), 1);
        let dst = Repository::open(dst.path(), &password()).unwrap();
        let copied = dst.load_snapshot(&snap.id).unwrap();
        assert_eq!(copied.tree == snap.tree, !rechunked, "same chunking keeps ids");
        let out = tmp.path().join(format!("out-{rechunked}"));
        restore_to(&dst, &copied, &out);
        assert_same_tree(&src_dir, &out);
        assert!(verify(&dst, &[], ReadData::All, &NoProgress).unwrap().ok());
        // A second copy finds the snapshot there already.
        let again = copy(
            &a,
            &dst,
            std::slice::from_ref(&snap),
            std::time::Duration::ZERO,
            &NoProgress,
        )
        .unwrap();
        assert_eq!(again.skipped, vec![snap.id]);
    }
    make_writable(tmp.path());
}

#[test]
fn temporary_files_of_killed_writers_are_unlisted_and_removed_once_old() {
    // A writer killed mid-pack leaves `data/.tmp-*`: never listed as a pack, and removed once
    // old; a fresh one (perhaps a live writer's) stays.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let repo = init_repo(&dir);
    let old_pack = repo.backend().temp_path(zenith_snapshot::backend::FileKind::Pack);
    assert_eq!(old_pack.parent(), Some(dir.join("data").as_path()));
    let old_index = dir.join("index/.tmp-0badc0de");
    let fresh_pack = repo.backend().temp_path(zenith_snapshot::backend::FileKind::Pack);
    for p in [&old_pack, &old_index, &fresh_pack] {
        std::fs::write(p, b"half a file").unwrap();
    }
    let day_ago = filetime::FileTime::from_unix_time(filetime::FileTime::now().unix_seconds() - 86_400, 0);
    for p in [&old_pack, &old_index] {
        filetime::set_file_mtime(p, day_ago).unwrap();
    }
    let packs = repo.backend().list(zenith_snapshot::backend::FileKind::Pack).unwrap();
    assert!(packs.is_empty(), "{packs:?}");
    let removed = repo
        .backend()
        .remove_stale_temp_files(std::time::Duration::from_secs(3600))
        .unwrap();
    assert_eq!(removed, 2);
    assert!(!old_pack.exists() && !old_index.exists());
    assert!(fresh_pack.exists());
}
