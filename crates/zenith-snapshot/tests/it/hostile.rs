//! Hostile repositories: trees with `..`, slashes, duplicate names and planted symlinks, and
//! blobs of garbage, must never make restore write outside its target, nor panic.

use serde_bytes::ByteBuf;
use zenith_snapshot::Id;
use zenith_snapshot::pack::BlobKind;
use zenith_snapshot::progress::NoProgress;
use zenith_snapshot::restorer::{RestoreOptions, restore};
use zenith_snapshot::saver::BlobSaver;
use zenith_snapshot::snapshot::{Snapshot, Summary};
use zenith_snapshot::tree::{Node, NodeKind, Tree};

use crate::common::*;

/// Store raw bytes as a blob of `kind`, bypassing every check a real writer makes.
fn put(saver: &BlobSaver, repo: &zenith_snapshot::Repository, kind: BlobKind, bytes: Vec<u8>) -> Id {
    let id = repo.key().blob_id(&bytes);
    saver.save(kind, id, bytes).unwrap();
    id
}

fn file(name: &[u8], content: Vec<Id>, size: u64) -> Node {
    let mut n = Node::new(name, NodeKind::File);
    n.mode = 0o644;
    n.content = content;
    n.size = size;
    n
}

fn dir(name: &[u8], subtree: Id) -> Node {
    let mut n = Node::new(name, NodeKind::Dir);
    n.mode = 0o755;
    n.subtree = Some(subtree);
    n
}

fn symlink(name: &[u8], target: &str) -> Node {
    let mut n = Node::new(name, NodeKind::Symlink);
    n.target = Some(ByteBuf::from(target.as_bytes()));
    n
}

#[test]
fn hostile_trees_never_write_outside_the_target() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = init_repo(&tmp.path().join("repo"));
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let outside_str = outside.to_string_lossy().into_owned();

    let saver = BlobSaver::new(&repo, 1);
    let data = put(&saver, &repo, BlobKind::Data, b"pwned".to_vec());
    let payload = Tree {
        nodes: vec![file(b"escape", vec![data], 5)],
    };
    let payload_id = put(&saver, &repo, BlobKind::Tree, payload.encode());
    let hostile_dirs: Vec<Vec<Node>> = vec![
        vec![dir(b"..", payload_id)],
        vec![dir(b"../../outside", payload_id)],
        vec![file(b"/abs/escape", vec![data], 5)],
        // A symlink to the outside and a directory of the same name after it.
        vec![symlink(b"link", &outside_str), dir(b"link", payload_id)],
        // A hard link whose first occurrence is missing, then a file through a symlink name.
        vec![symlink(b"a", &outside_str), file(b"a", vec![data], 5)],
        vec![dir(b"", payload_id)],
    ];
    let mut roots = Vec::new();
    for nodes in hostile_dirs {
        let inner = put(&saver, &repo, BlobKind::Tree, Tree { nodes }.encode());
        let root = put(
            &saver,
            &repo,
            BlobKind::Tree,
            Tree {
                nodes: vec![dir(b"state", inner)],
            }
            .encode(),
        );
        roots.push(root);
    }
    // And trees that are not trees at all.
    for garbage in [vec![], vec![0xff; 40], b"\xa1\x65nodes\x81\x01".to_vec(), noise(500, 3)] {
        roots.push(put(&saver, &repo, BlobKind::Tree, garbage));
    }
    saver.finish().unwrap();
    let repo = zenith_snapshot::Repository::open(repo.path(), &password()).unwrap();

    for (i, root) in roots.into_iter().enumerate() {
        let snap = Snapshot {
            id: Id::random(),
            time: jiff::Timestamp::now(),
            kind: None,
            name: None,
            host: "h".into(),
            username: "u".into(),
            paths: vec!["/state".into()],
            tags: vec![],
            tree: root,
            parent: None,
            summary: Summary::default(),
            program_version: "hostile".into(),
        };
        repo.save_snapshot(&snap).unwrap();
        let target = tmp.path().join(format!("target-{i}")).join("deep");
        let opts = RestoreOptions {
            target: Some(target.clone()),
            ..Default::default()
        };
        match restore(&repo, &snap, &opts, &NoProgress) {
            Ok(r) => assert!(
                !r.damaged.is_empty(),
                "case {i}: hostile tree restored without complaint"
            ),
            Err(e) => assert!(
                e.to_string().contains("damaged") || e.to_string().contains("tree"),
                "case {i}: {e}"
            ),
        }
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "case {i} wrote outside"
        );
        assert!(!tmp.path().join("escape").exists(), "case {i} escaped");
        assert!(
            !tmp.path().join(format!("target-{i}")).join("escape").exists(),
            "case {i} escaped"
        );
    }
}
