//! What a file system entry's metadata becomes in a tree node, and the checks against the
//! parent snapshot that let unchanged files go unread.

use std::fs::Metadata;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use serde_bytes::ByteBuf;

use crate::tree::{Extent, Node, NodeKind, Tree, Xattr};

pub(super) fn find_node<'t>(tree: &'t Tree, name: &[u8]) -> Option<&'t Node> {
    tree.nodes
        .binary_search_by(|n| n.name.as_slice().cmp(name))
        .ok()
        .map(|i| &tree.nodes[i])
}

/// The file is the same as in the parent snapshot if its size, times and inode are.
pub(super) fn unchanged(parent: &Node, now: &Node) -> bool {
    parent.kind == NodeKind::File
        && parent.size == now.size
        && parent.mtime_ns == now.mtime_ns
        && parent.ctime_ns == now.ctime_ns
        && parent.inode == now.inode
}

pub(super) fn node_from_meta(name: &[u8], meta: &Metadata) -> Node {
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        NodeKind::Dir
    } else if ft.is_symlink() {
        NodeKind::Symlink
    } else if ft.is_fifo() {
        NodeKind::Fifo
    } else if ft.is_socket() {
        NodeKind::Socket
    } else if ft.is_char_device() {
        NodeKind::CharDevice
    } else if ft.is_block_device() {
        NodeKind::BlockDevice
    } else {
        NodeKind::File
    };
    let mut n = Node::new(name, kind);
    n.mode = meta.mode() & 0o7777;
    n.uid = meta.uid();
    n.gid = meta.gid();
    n.mtime_ns = meta
        .mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec());
    n.ctime_ns = meta
        .ctime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.ctime_nsec());
    n.inode = meta.ino();
    n.device = meta.dev();
    n.links = meta.nlink();
    n.size = if kind == NodeKind::File { meta.size() } else { 0 };
    n.rdev = if matches!(kind, NodeKind::CharDevice | NodeKind::BlockDevice) {
        meta.rdev()
    } else {
        0
    };
    n
}

pub(super) fn read_xattrs(path: &Path) -> Vec<Xattr> {
    let Ok(names) = xattr::list(path) else {
        return Vec::new();
    };
    let mut out: Vec<Xattr> = names
        .filter_map(|name| {
            let value = xattr::get(path, &name).ok()??;
            Some(Xattr {
                name: ByteBuf::from(name.into_vec()),
                value: ByteBuf::from(value),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Data regions of a file with holes, from SEEK_DATA/SEEK_HOLE; `None` when the file system
/// cannot tell or the file is dense after all.
pub(super) fn data_extents(file: &std::fs::File, size: u64) -> Option<Vec<Extent>> {
    use rustix::fs::{SeekFrom as RSeek, seek};
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos < size {
        let start = match seek(file, RSeek::Data(pos)) {
            Ok(s) => s,
            Err(rustix::io::Errno::NXIO) => break,
            Err(_) => return None,
        };
        let end = seek(file, RSeek::Hole(start)).ok()?.min(size);
        if end > start {
            out.push(Extent {
                offset: start,
                len: end - start,
            });
        }
        pos = end.max(start + 1);
    }
    if out.len() == 1 && out[0].offset == 0 && out[0].len == size {
        return None;
    }
    Some(out)
}
