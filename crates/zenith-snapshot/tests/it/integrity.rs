//! A flipped byte anywhere in the repository is found and named; a damaged file fails to
//! restore loudly while the others restore; a wrong password is a clear error.

use std::path::{Path, PathBuf};

use zenith_snapshot::progress::NoProgress;
use zenith_snapshot::verify::{ReadData, verify};
use zenith_snapshot::{Error, Repository};

use crate::common::*;

fn repo_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.starts_with(root.join("locks")) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn flip(path: &Path, offset_seed: u64) -> u64 {
    let mut bytes = std::fs::read(path).unwrap();
    let at = (offset_seed.wrapping_mul(2_654_435_761) % bytes.len() as u64) as usize;
    bytes[at] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
    at as u64
}

/// Run open + full verify and return everything said about the damage.
fn findings(repo_dir: &Path) -> String {
    match Repository::open(repo_dir, &password()) {
        Err(e) => format!("open: {e}"),
        Ok(repo) => {
            let r = verify(&repo, &[], ReadData::All, &NoProgress).unwrap();
            r.errors
                .iter()
                .map(|e| format!("{}: {}\n", e.object, e.detail))
                .collect()
        }
    }
}

#[test]
fn a_flipped_byte_in_any_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a"), noise(200_000, 3)).unwrap();
    std::fs::write(src.join("b.txt"), "text ".repeat(50_000)).unwrap();
    let clean = tmp.path().join("repo");
    let repo = init_repo(&clean);
    snapshot(&repo, &[&src]);
    std::fs::write(src.join("c"), b"more").unwrap();
    snapshot(&repo, &[&src]);
    assert_eq!(findings(&clean), "", "a clean repository verifies");

    let files = repo_files(&clean);
    assert!(files.len() >= 8, "{files:?}");
    for (i, f) in files.iter().enumerate() {
        for seed in [i as u64, i as u64 + 7919] {
            let work = tmp.path().join(format!("damaged-{i}-{seed}"));
            copy_dir(&clean, &work);
            let rel = f.strip_prefix(&clean).unwrap();
            let at = flip(&work.join(rel), seed);
            let said = findings(&work);
            let name = rel.file_name().unwrap().to_string_lossy().into_owned();
            let named = if name == "config" {
                said.contains("config")
            } else {
                said.contains(&name)
            };
            assert!(named, "byte {at} of {} flipped; verify said: {said:?}", rel.display());
            std::fs::remove_dir_all(&work).unwrap();
        }
    }
}

#[test]
fn a_damaged_file_fails_to_restore_loudly_and_the_rest_restores() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("victim"), noise(100_000, 5)).unwrap();
    std::fs::write(src.join("bystander"), noise(100_000, 6)).unwrap();
    let dir = tmp.path().join("repo");
    let repo = init_repo(&dir);
    let snap = snapshot(&repo, &[&src]).snapshot;
    // Find the victim's first chunk and damage it in its pack.
    let root = repo.load_tree(&snap.tree).unwrap();
    let top = repo.load_tree(&root.nodes[0].subtree.unwrap()).unwrap();
    let victim = top.nodes.iter().find(|n| n.name.as_slice() == b"victim").unwrap();
    let index = repo.index().unwrap();
    let loc = *index.get(&victim.content[0]).unwrap();
    let pack = repo.pack_path(index.pack_id(loc.pack));
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[loc.offset as usize + 30] ^= 1;
    std::fs::write(&pack, bytes).unwrap();

    let repo = Repository::open(&dir, &password()).unwrap();
    let report = verify(&repo, &[], ReadData::All, &NoProgress).unwrap();
    let blob = report
        .errors
        .iter()
        .find(|e| e.object.contains(&victim.content[0].to_hex()))
        .expect("the damaged blob is named");
    assert!(
        blob.affects.iter().any(|a| a.contains("/src/victim")),
        "{:?}",
        blob.affects
    );

    let target = tmp.path().join("out");
    let r = restore_to(&repo, &snap, &target);
    assert_eq!(r.damaged.len(), 1, "{:?}", r.damaged);
    assert!(r.damaged[0].contains("victim"));
    assert_eq!(std::fs::read(target.join("bystander")).unwrap(), noise(100_000, 6));
}

#[test]
fn a_damaged_chunk_inside_a_large_file_costs_only_that_chunk() {
    // A file of many chunks is restored in parts by several threads; one damaged chunk in
    // the middle leaves a hole of its size, named, and every other byte in place.
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let data = noise(24 << 20, 8);
    std::fs::write(src.join("large"), &data).unwrap();
    let dir = tmp.path().join("repo");
    let repo = init_repo(&dir);
    let snap = snapshot(&repo, &[&src]).snapshot;
    let root = repo.load_tree(&snap.tree).unwrap();
    let top = repo.load_tree(&root.nodes[0].subtree.unwrap()).unwrap();
    let node = &top.nodes[0];
    assert!(node.content.len() > 128, "{} chunks", node.content.len());
    let index = repo.index().unwrap();
    let victim = node.content.len() / 2;
    let start: u64 = node.content[..victim]
        .iter()
        .map(|id| u64::from(index.get(id).unwrap().raw_len))
        .sum();
    let loc = *index.get(&node.content[victim]).unwrap();
    let pack = repo.pack_path(index.pack_id(loc.pack));
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[loc.offset as usize + 40] ^= 0x80;
    std::fs::write(&pack, bytes).unwrap();

    let repo = Repository::open(&dir, &password()).unwrap();
    let target = tmp.path().join("out");
    let r = restore_to(&repo, &snap, &target);
    assert_eq!(r.damaged.len(), 1, "{:?}", r.damaged);
    assert!(r.damaged[0].contains(&format!("bytes {start}..")), "{:?}", r.damaged);
    let got = std::fs::read(target.join("large")).unwrap();
    assert_eq!(got.len(), data.len());
    let end = (start + u64::from(loc.raw_len)) as usize;
    let start = start as usize;
    assert_eq!(got[..start], data[..start]);
    assert!(got[start..end].iter().all(|&b| b == 0), "the damaged chunk is a hole");
    assert_eq!(got[end..], data[end..]);
}

#[test]
fn a_wrong_password_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    init_repo(&tmp.path().join("repo"));
    let err = Repository::open(
        &tmp.path().join("repo"),
        &zenith_snapshot::crypto::Password::new("nope"),
    )
    .unwrap_err();
    assert!(matches!(err, Error::WrongPassword { .. }), "{err}");
    assert!(err.to_string().contains("wrong password"));
    let err = Repository::open(&tmp.path().join("nothing"), &password()).unwrap_err();
    assert!(matches!(err, Error::NotARepository { .. }), "{err}");
}
