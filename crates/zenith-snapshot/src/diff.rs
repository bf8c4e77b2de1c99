//! Comparing two snapshots: which paths were added, removed or changed, with sizes. Subtrees
//! with the same id are skipped whole, so a diff costs what changed, not what exists.

use serde::Serialize;

use crate::error::Result;
use crate::id::Id;
use crate::repo::Repository;
use crate::tree::{Node, NodeKind, Tree};

/// How a path differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Added,
    Removed,
    /// Contents differ.
    Modified,
    /// Only metadata (mode, owner, times, xattrs) differs.
    Metadata,
    /// The type changed (e.g. file became directory).
    Type,
}

/// One changed path.
#[derive(Clone, Debug, Serialize)]
pub struct DiffEntry {
    pub path: String,
    pub change: Change,
    pub kind: NodeKind,
    pub old_size: Option<u64>,
    pub new_size: Option<u64>,
}

/// Totals of a diff.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DiffStats {
    pub added: u64,
    pub removed: u64,
    pub modified: u64,
    pub metadata: u64,
    pub bytes_added: u64,
    pub bytes_removed: u64,
}

/// Paths that differ between the trees `a` and `b`, in path order.
pub fn diff(repo: &Repository, a: &Id, b: &Id) -> Result<(Vec<DiffEntry>, DiffStats)> {
    let mut out = Vec::new();
    diff_trees(repo, Some(a), Some(b), "", &mut out)?;
    let mut st = DiffStats::default();
    for e in &out {
        match e.change {
            Change::Added => {
                st.added += 1;
                st.bytes_added += e.new_size.unwrap_or(0);
            }
            Change::Removed => {
                st.removed += 1;
                st.bytes_removed += e.old_size.unwrap_or(0);
            }
            Change::Modified | Change::Type => st.modified += 1,
            Change::Metadata => st.metadata += 1,
        }
    }
    Ok((out, st))
}

fn load(repo: &Repository, id: Option<&Id>) -> Result<Tree> {
    match id {
        Some(id) => repo.load_tree(id),
        None => Ok(Tree::default()),
    }
}

fn entry(path: String, change: Change, old: Option<&Node>, new: Option<&Node>) -> DiffEntry {
    let size = |n: Option<&Node>| n.filter(|n| n.kind == NodeKind::File).map(|n| n.size);
    DiffEntry {
        path,
        change,
        kind: new.or(old).map_or(NodeKind::File, |n| n.kind),
        old_size: size(old),
        new_size: size(new),
    }
}

fn diff_trees(repo: &Repository, a: Option<&Id>, b: Option<&Id>, prefix: &str, out: &mut Vec<DiffEntry>) -> Result<()> {
    if a == b {
        return Ok(());
    }
    let (ta, tb) = (load(repo, a)?, load(repo, b)?);
    let (mut i, mut j) = (0, 0);
    while i < ta.nodes.len() || j < tb.nodes.len() {
        let (na, nb) = (ta.nodes.get(i), tb.nodes.get(j));
        let order = match (na, nb) {
            (Some(x), Some(y)) => x.name.cmp(&y.name),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                let n = &ta.nodes[i];
                let path = format!("{prefix}/{}", n.display_name());
                out.push(entry(path.clone(), Change::Removed, Some(n), None));
                if let Some(s) = &n.subtree {
                    diff_trees(repo, Some(s), None, &path, out)?;
                }
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                let n = &tb.nodes[j];
                let path = format!("{prefix}/{}", n.display_name());
                out.push(entry(path.clone(), Change::Added, None, Some(n)));
                if let Some(s) = &n.subtree {
                    diff_trees(repo, None, Some(s), &path, out)?;
                }
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                let (x, y) = (&ta.nodes[i], &tb.nodes[j]);
                let path = format!("{prefix}/{}", x.display_name());
                if x.kind != y.kind {
                    out.push(entry(path.clone(), Change::Type, Some(x), Some(y)));
                } else if x.content != y.content || x.target != y.target || x.size != y.size {
                    out.push(entry(path.clone(), Change::Modified, Some(x), Some(y)));
                } else if x.kind != NodeKind::Dir
                    && (x.mode != y.mode
                        || x.uid != y.uid
                        || x.gid != y.gid
                        || x.mtime_ns != y.mtime_ns
                        || x.xattrs != y.xattrs)
                {
                    out.push(entry(path.clone(), Change::Metadata, Some(x), Some(y)));
                }
                if x.subtree.is_some() || y.subtree.is_some() {
                    let xs = x.subtree.filter(|_| x.kind == NodeKind::Dir);
                    let ys = y.subtree.filter(|_| y.kind == NodeKind::Dir);
                    diff_trees(repo, xs.as_ref(), ys.as_ref(), &path, out)?;
                }
                i += 1;
                j += 1;
            }
        }
    }
    Ok(())
}
