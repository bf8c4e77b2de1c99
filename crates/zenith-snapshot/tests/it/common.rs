//! Shared helpers: repositories with cheap keys, rich test trees, and a tree comparison that
//! checks everything a restore must keep.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zenith_snapshot::Repository;
use zenith_snapshot::archiver::{CreateOptions, CreateReport, create};
use zenith_snapshot::crypto::{KdfParams, Password};
use zenith_snapshot::progress::NoProgress;
use zenith_snapshot::repo::InitOptions;
use zenith_snapshot::restorer::{RestoreOptions, RestoreReport, restore};

pub fn password() -> Password {
    Password::new("correct horse")
}

pub fn init_repo(path: &Path) -> Repository {
    let opts = InitOptions {
        kdf: KdfParams::insecure_for_tests(),
        pack_size: 1 << 20,
        ..Default::default()
    };
    Repository::init(path, &password(), &opts, None).unwrap()
}

pub fn snapshot(repo: &Repository, paths: &[&Path]) -> CreateReport {
    let opts = CreateOptions {
        paths: paths.iter().map(|p| p.to_path_buf()).collect(),
        ..Default::default()
    };
    create(repo, &opts, &NoProgress).unwrap()
}

pub fn restore_to(repo: &Repository, snap: &zenith_snapshot::Snapshot, target: &Path) -> RestoreReport {
    let opts = RestoreOptions {
        target: Some(target.to_path_buf()),
        backup: true,
        ..Default::default()
    };
    restore(repo, snap, &opts, &NoProgress).unwrap()
}

/// Deterministic pseudo-random bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn xattrs_supported(dir: &Path) -> bool {
    let probe = dir.join(".xattr-probe");
    std::fs::write(&probe, b"").unwrap();
    let ok = xattr::set(&probe, "user.zenith", b"1").is_ok();
    std::fs::remove_file(probe).unwrap();
    ok
}

/// A tree with every kind of entry a round trip must keep.
pub fn rich_tree(root: &Path) {
    let w = |p: &str, data: &[u8]| {
        let path = root.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    };
    w("small.txt", b"hello zenith\n");
    w("empty", b"");
    w("dir/nested/deep.bin", &noise(300_000, 1));
    w("dir/exec.sh", b"#!/bin/sh\necho hi\n");
    std::fs::set_permissions(root.join("dir/exec.sh"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    std::fs::create_dir_all(root.join("empty-dir")).unwrap();
    std::fs::create_dir_all(root.join("readonly-dir")).unwrap();
    w("readonly-dir/inside", b"x");
    std::os::unix::fs::symlink("does/not/exist", root.join("dangling")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", root.join("absolute-link")).unwrap();
    std::os::unix::fs::symlink("dir", root.join("dir-link")).unwrap();
    std::fs::hard_link(root.join("small.txt"), root.join("dir/hardlink")).unwrap();
    // Names that are not UTF-8.
    std::fs::write(root.join(OsStr::from_bytes(b"caf\xe9-\xff")), b"latin-1 name").unwrap();
    std::fs::create_dir_all(root.join(OsStr::from_bytes(b"dir-\xfe"))).unwrap();
    // A sparse file: 64 MiB with two small data regions.
    let f = std::fs::File::create(root.join("sparse")).unwrap();
    f.set_len(64 << 20).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&noise(10_000, 2), 5 << 20).unwrap();
    f.write_all_at(b"tail", (64 << 20) - 4).unwrap();
    drop(f);
    // A big, compressible file spanning many chunks.
    let text: Vec<u8> = (0..200_000)
        .flat_map(|i| format!("line {i} of a log\n").into_bytes())
        .collect();
    w("dir/log.txt", &text);
    if xattrs_supported(root) {
        xattr::set(root.join("small.txt"), "user.comment", b"kept").unwrap();
        xattr::set(root.join("dir"), "user.dir", b"also").unwrap();
    }
    // Distinct nanosecond mtimes.
    let t = filetime::FileTime::from_unix_time(1_600_000_000, 123_456_789);
    filetime::set_file_mtime(root.join("dir/nested/deep.bin"), t).unwrap();
    let t2 = filetime::FileTime::from_unix_time(1_500_000_000, 987_654_321);
    filetime::set_symlink_file_times(root.join("dangling"), t2, t2).unwrap();
    std::fs::set_permissions(root.join("readonly-dir"), std::fs::Permissions::from_mode(0o555)).unwrap();
}

/// Everything about one entry that a restore must reproduce.
#[derive(Debug, PartialEq)]
pub struct Entry {
    kind: &'static str,
    mode: u32,
    mtime: (i64, i64),
    size: u64,
    content: Option<blake3::Hash>,
    target: Option<PathBuf>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Index of the first path with the same inode (hardlink groups).
    link_group: Option<usize>,
    /// For sparse files: is most of it still a hole?
    sparse: bool,
}

/// Describe a tree by relative path (symlinks are not followed).
pub fn describe(root: &Path) -> BTreeMap<Vec<u8>, Entry> {
    let mut out = BTreeMap::new();
    let mut inodes: Vec<u64> = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    let mut paths = Vec::new();
    while let Some(d) = stack.pop() {
        let mut names: Vec<_> = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        for p in names {
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p.clone());
            }
            paths.push((p, m));
        }
    }
    paths.sort_by(|a, b| a.0.cmp(&b.0));
    for (p, m) in paths {
        let rel = p.strip_prefix(root).unwrap().as_os_str().as_bytes().to_vec();
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_symlink() {
            "symlink"
        } else {
            "file"
        };
        let link_group = (ft.is_file() && m.nlink() > 1).then(|| match inodes.iter().position(|i| *i == m.ino()) {
            Some(i) => i,
            None => {
                inodes.push(m.ino());
                inodes.len() - 1
            }
        });
        let mut xattrs: Vec<_> = if ft.is_symlink() {
            Vec::new()
        } else {
            xattr::list(&p)
                .map(|names| {
                    names
                        .map(|n| {
                            let v = xattr::get(&p, &n).unwrap().unwrap_or_default();
                            (n.as_bytes().to_vec(), v)
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        xattrs.sort();
        out.insert(
            rel,
            Entry {
                kind,
                mode: if ft.is_symlink() { 0 } else { m.mode() & 0o7777 },
                mtime: (m.mtime(), m.mtime_nsec()),
                size: if ft.is_file() { m.len() } else { 0 },
                content: ft.is_file().then(|| blake3::hash(&std::fs::read(&p).unwrap())),
                target: ft.is_symlink().then(|| std::fs::read_link(&p).unwrap()),
                xattrs,
                link_group,
                sparse: ft.is_file() && m.blocks() * 512 < m.len() / 2,
            },
        );
    }
    out
}

pub fn assert_same_tree(a: &Path, b: &Path) {
    let (da, db) = (describe(a), describe(b));
    let names = |d: &BTreeMap<Vec<u8>, Entry>| {
        d.keys()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&da), names(&db), "different entries");
    for (k, ea) in &da {
        assert_eq!(Some(ea), db.get(k), "entry {:?} differs", String::from_utf8_lossy(k));
    }
    let root_a = std::fs::metadata(a).unwrap();
    let root_b = std::fs::metadata(b).unwrap();
    assert_eq!(root_a.mode() & 0o7777, root_b.mode() & 0o7777, "root mode");
}

/// Make a tree writable again so temp dirs can be removed.
pub fn make_writable(root: &Path) {
    for entry in walk(root) {
        if entry.is_dir() {
            let _ = std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o755));
        }
    }
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let p = out[i].clone();
        if std::fs::symlink_metadata(&p).map(|m| m.is_dir()).unwrap_or(false)
            && let Ok(rd) = std::fs::read_dir(&p)
        {
            out.extend(rd.flatten().map(|e| e.path()));
        }
        i += 1;
    }
    out
}
