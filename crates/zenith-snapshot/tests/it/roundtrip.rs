//! restore(create(tree)) == tree, for a hand-made tree with every kind of entry and for random
//! trees; unchanged files are not read again.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use proptest::prelude::*;

use crate::common::*;

#[test]
fn rich_tree_round_trips_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    rich_tree(&src);
    let repo = init_repo(&tmp.path().join("repo"));
    let report = snapshot(&repo, &[&src]);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let target = tmp.path().join("out");
    let r = restore_to(&repo, &report.snapshot, &target);
    assert!(r.damaged.is_empty(), "{:?}", r.damaged);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_same_tree(&src, &target);
    // The sparse file kept its holes.
    let m = std::fs::metadata(target.join("sparse")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert!(m.blocks() * 512 < 1 << 20, "sparse file took {} blocks", m.blocks());
    make_writable(tmp.path());
}

#[test]
fn unchanged_files_are_not_read_again() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    rich_tree(&src);
    let repo = init_repo(&tmp.path().join("repo"));
    let first = snapshot(&repo, &[&src]).snapshot;
    assert!(first.summary.bytes_read > 0);
    let second = snapshot(&repo, &[&src]).snapshot;
    assert_eq!(second.parent, Some(first.id));
    assert_eq!(second.summary.bytes_read, 0, "{:?}", second.summary);
    assert_eq!(second.summary.files_unmodified, second.summary.files);
    assert_eq!(second.tree, first.tree, "same data, same root tree");
    // One change is read; only it.
    std::fs::write(src.join("dir/exec.sh"), b"#!/bin/sh\necho changed\n").unwrap();
    let third = snapshot(&repo, &[&src]).snapshot;
    assert_eq!(third.summary.files_changed, 1);
    assert_eq!(third.summary.bytes_read, 23);
    make_writable(tmp.path());
}

#[test]
fn many_files_large_and_small_are_stored_once_and_read_again_only_when_asked() {
    // Large files span several segments and restore in parts; small ones share segments;
    // equal contents are stored once; a forced re-read of the same data stores nothing.
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("small/deeper")).unwrap();
    let big = noise(9 << 20, 11);
    std::fs::write(src.join("big"), &big).unwrap();
    std::fs::write(src.join("big-copy"), &big).unwrap();
    std::fs::write(src.join("text"), "zenith keeps state safe\n".repeat(200_000)).unwrap();
    for i in 0..600u64 {
        let dir = if i % 3 == 0 { "small/deeper" } else { "small" };
        std::fs::write(
            src.join(dir).join(format!("f{i}")),
            noise(100 + (i as usize * 37) % 5000, i),
        )
        .unwrap();
    }
    std::fs::write(src.join("small/empty"), b"").unwrap();
    let repo = init_repo(&tmp.path().join("repo"));
    let first = snapshot(&repo, &[&src]).snapshot;
    let s = &first.summary;
    assert_eq!(s.files, 604);
    assert_eq!(s.bytes_read, s.bytes);
    // The copy of the big file adds nothing: what was added is less than the data read
    // by at least the copy's size.
    assert!(s.bytes_added <= s.bytes - big.len() as u64, "{s:?}");

    let forced = zenith_snapshot::archiver::create(
        &repo,
        &zenith_snapshot::archiver::CreateOptions {
            paths: vec![src.clone()],
            parent: zenith_snapshot::archiver::ParentChoice::None,
            ..Default::default()
        },
        &zenith_snapshot::progress::NoProgress,
    )
    .unwrap()
    .snapshot;
    assert_eq!(forced.summary.bytes_read, s.bytes, "everything read again");
    assert_eq!(forced.summary.blobs_added, 0, "{:?}", forced.summary);
    assert_eq!(forced.tree, first.tree);

    let target = tmp.path().join("out");
    let r = restore_to(&repo, &forced, &target);
    assert!(r.damaged.is_empty() && r.warnings.is_empty(), "{r:?}");
    assert_same_tree(&src, &target);
}

#[test]
fn restore_in_place_keeps_a_pre_restore_snapshot_and_swaps_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("state");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a"), b"version 1").unwrap();
    let repo = init_repo(&tmp.path().join("repo"));
    let v1 = snapshot(&repo, &[&src]).snapshot;
    std::fs::write(src.join("a"), b"version 2").unwrap();
    std::fs::write(src.join("b"), b"new file").unwrap();
    let opts = zenith_snapshot::restorer::RestoreOptions {
        backup: true,
        ..Default::default()
    };
    let r = zenith_snapshot::restorer::restore(&repo, &v1, &opts, &zenith_snapshot::progress::NoProgress).unwrap();
    assert_eq!(std::fs::read(src.join("a")).unwrap(), b"version 1");
    assert!(!src.join("b").exists(), "the restore replaces the directory whole");
    let pre = repo.load_snapshot(&r.pre_restore_snapshot.unwrap()).unwrap();
    assert!(pre.has_tag("pre-restore"));
    // The pre-restore snapshot holds what was there.
    let back = tmp.path().join("back");
    restore_to(&repo, &pre, &back);
    assert_eq!(std::fs::read(back.join("b")).unwrap(), b"new file");
    // Nothing is left beside the target.
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("zenith-restore"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn include_restores_only_the_named_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("keep/sub")).unwrap();
    std::fs::create_dir_all(src.join("skip")).unwrap();
    std::fs::write(src.join("keep/sub/f"), b"1").unwrap();
    std::fs::write(src.join("skip/g"), b"2").unwrap();
    let repo = init_repo(&tmp.path().join("repo"));
    let s = snapshot(&repo, &[&src]).snapshot;
    let target = tmp.path().join("out");
    let opts = zenith_snapshot::restorer::RestoreOptions {
        target: Some(target.clone()),
        includes: vec!["keep/sub".into()],
        ..Default::default()
    };
    zenith_snapshot::restorer::restore(&repo, &s, &opts, &zenith_snapshot::progress::NoProgress).unwrap();
    assert_eq!(std::fs::read(target.join("keep/sub/f")).unwrap(), b"1");
    assert!(!target.join("skip").exists());
}

/// One random entry: path components, and contents (a file) or none (a directory).
type RandomEntry = (Vec<Vec<u8>>, Option<Vec<u8>>);

/// A random tree of files and empty directories.
fn random_tree() -> impl Strategy<Value = Vec<RandomEntry>> {
    let name = prop::collection::vec(prop::sample::select(b"abcxyz\xff\xe9 -_.".to_vec()), 1..6)
        .prop_filter("a usable name", |n| n != b"." && n != b"..");
    let path = prop::collection::vec(name, 1..4);
    let data = prop::option::of(prop::collection::vec(any::<u8>(), 0..70_000));
    prop::collection::vec((path, data), 1..25)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn random_trees_round_trip(entries in random_tree()) {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir(&src).unwrap();
        for (parts, data) in &entries {
            let mut p = src.clone();
            for part in parts {
                p.push(OsStr::from_bytes(part));
            }
            // Skip entries whose parent is already a file, or that exist.
            if std::fs::symlink_metadata(&p).is_ok() {
                continue;
            }
            if p.ancestors().skip(1).any(|a| a.is_file()) {
                continue;
            }
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            match data {
                Some(d) => std::fs::write(&p, d).unwrap(),
                None => std::fs::create_dir(&p).unwrap(),
            }
        }
        let repo = init_repo(&tmp.path().join("repo"));
        let s = snapshot(&repo, &[&src]).snapshot;
        let target = tmp.path().join("out");
        let r = restore_to(&repo, &s, &target);
        prop_assert!(r.damaged.is_empty());
        assert_same_tree(&src, &target);
    }
}
