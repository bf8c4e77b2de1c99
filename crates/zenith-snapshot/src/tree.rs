//! Directory trees: one blob per directory listing its entries with their metadata, content
//! chunk ids and subtree ids. Decoding checks everything a hostile repository could use to make
//! a restore escape its target: names are single path components, unique and sorted.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::id::Id;

/// The type of a file system entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

/// A data region of a sparse file; everything outside the regions is a hole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extent {
    pub offset: u64,
    pub len: u64,
}

/// One extended attribute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xattr {
    pub name: ByteBuf,
    pub value: ByteBuf,
}

/// One entry of a directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    #[serde(rename = "n")]
    pub name: ByteBuf,
    #[serde(rename = "k")]
    pub kind: NodeKind,
    /// Permission bits, including setuid, setgid and sticky.
    #[serde(rename = "m")]
    pub mode: u32,
    #[serde(rename = "u")]
    pub uid: u32,
    #[serde(rename = "g")]
    pub gid: u32,
    /// Modification time, nanoseconds since the epoch.
    #[serde(rename = "t")]
    pub mtime_ns: i64,
    /// Status-change time, for change detection only (it cannot be restored).
    #[serde(rename = "c")]
    pub ctime_ns: i64,
    #[serde(rename = "i")]
    pub inode: u64,
    #[serde(rename = "d")]
    pub device: u64,
    #[serde(rename = "h", default)]
    pub links: u64,
    #[serde(rename = "s", default)]
    pub size: u64,
    /// File contents, as chunk ids in order.
    #[serde(rename = "x", default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<Id>,
    /// Data regions of a sparse file; `None` for a dense file.
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub extents: Option<Vec<Extent>>,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub subtree: Option<Id>,
    #[serde(rename = "y", default, skip_serializing_if = "Option::is_none")]
    pub target: Option<ByteBuf>,
    #[serde(rename = "v", default)]
    pub rdev: u64,
    #[serde(rename = "a", default, skip_serializing_if = "Vec::is_empty")]
    pub xattrs: Vec<Xattr>,
}

impl Node {
    /// A node with the given name and kind and zeroed metadata.
    pub fn new(name: &[u8], kind: NodeKind) -> Node {
        Node {
            name: ByteBuf::from(name),
            kind,
            mode: 0,
            uid: 0,
            gid: 0,
            mtime_ns: 0,
            ctime_ns: 0,
            inode: 0,
            device: 0,
            links: 0,
            size: 0,
            content: Vec::new(),
            extents: None,
            subtree: None,
            target: None,
            rdev: 0,
            xattrs: Vec::new(),
        }
    }

    /// The name for messages (lossy for names that are not UTF-8).
    pub fn display_name(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// A directory listing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

/// Why a tree blob was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    #[error("undecodable tree: {0}")]
    Decode(String),
    #[error("entry name {0:?} is not a single path component")]
    BadName(String),
    #[error("entry names are not sorted and unique at {0:?}")]
    Unsorted(String),
    #[error("entry {0:?} has fields that do not fit its type")]
    Inconsistent(String),
}

/// True for a name that is exactly one path component: not empty, not `.` or `..`, and free
/// of `/` and NUL.
pub fn is_safe_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}

impl Tree {
    /// Sort entries by name, as `encode` requires.
    pub fn sort(&mut self) {
        self.nodes.sort_by(|a, b| a.name.cmp(&b.name));
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.nodes.len() * 128);
        ciborium::into_writer(self, &mut out).expect("a tree always serializes to a Vec");
        out
    }

    /// Decode and validate a tree blob.
    pub fn decode(bytes: &[u8]) -> Result<Tree, TreeError> {
        let tree: Tree = ciborium::from_reader(bytes).map_err(|e| TreeError::Decode(e.to_string()))?;
        tree.validate()?;
        Ok(tree)
    }

    pub fn validate(&self) -> Result<(), TreeError> {
        let mut prev: Option<&[u8]> = None;
        for n in &self.nodes {
            if !is_safe_name(&n.name) {
                return Err(TreeError::BadName(n.display_name()));
            }
            if prev.is_some_and(|p| p >= n.name.as_slice()) {
                return Err(TreeError::Unsorted(n.display_name()));
            }
            prev = Some(&n.name);
            let ok = match n.kind {
                NodeKind::Dir => n.subtree.is_some() && n.content.is_empty() && n.target.is_none(),
                NodeKind::File => n.subtree.is_none() && n.target.is_none(),
                NodeKind::Symlink => n.target.is_some() && n.subtree.is_none() && n.content.is_empty(),
                _ => n.subtree.is_none() && n.content.is_empty() && n.target.is_none(),
            };
            let extents_ok = match &n.extents {
                None => true,
                Some(ex) => {
                    n.kind == NodeKind::File
                        && ex
                            .iter()
                            .all(|e| e.offset.checked_add(e.len).is_some_and(|end| end <= n.size))
                        && ex.windows(2).all(|w| w[0].offset + w[0].len <= w[1].offset)
                }
            };
            if !ok || !extents_ok {
                return Err(TreeError::Inconsistent(n.display_name()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node(name: &[u8]) -> Node {
        let mut n = Node::new(name, NodeKind::File);
        n.content = vec![Id::random()];
        n
    }

    #[test]
    fn hostile_names_are_rejected() {
        for bad in [&b""[..], b".", b"..", b"a/b", b"/etc", b"a\0b"] {
            let t = Tree { nodes: vec![node(bad)] };
            assert!(
                matches!(Tree::decode(&t.encode()), Err(TreeError::BadName(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn duplicate_names_are_rejected() {
        let t = Tree {
            nodes: vec![node(b"a"), node(b"a")],
        };
        assert!(matches!(Tree::decode(&t.encode()), Err(TreeError::Unsorted(_))));
    }

    #[test]
    fn a_dir_without_subtree_is_rejected() {
        let t = Tree {
            nodes: vec![Node::new(b"d", NodeKind::Dir)],
        };
        assert!(matches!(Tree::decode(&t.encode()), Err(TreeError::Inconsistent(_))));
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(names in proptest::collection::btree_set(proptest::collection::vec(1u8..=255, 1..20), 0..20)) {
            let names: Vec<_> = names.into_iter().filter(|n| is_safe_name(n)).collect();
            let mut t = Tree { nodes: names.iter().map(|n| node(n)).collect() };
            t.sort();
            prop_assert_eq!(Tree::decode(&t.encode()).unwrap(), t);
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Tree::decode(&bytes);
        }
    }
}
