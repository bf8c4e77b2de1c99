//! Read-only looks at snapshots: list, show, ls, diff — and tag, which edits only labels.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use zenith_snapshot::Snapshot;
use zenith_snapshot::diff::Change;
use zenith_snapshot::lock::Lock;
use zenith_snapshot::tree::{Node, NodeKind};

use super::CmdResult;
use super::snapshot::FilterArgs;
use crate::exit::{OK, usage};
use crate::output::{Out, bytes, local_time, table};
use crate::repo_open::RepoArgs;

/// A snapshot as listings and `show` present it (the seed's metadata.json fields and more).
#[derive(Serialize)]
pub struct SnapshotView<'a> {
    pub id: String,
    pub short_id: String,
    pub time: jiff::Timestamp,
    #[serde(rename = "type")]
    pub kind: Option<&'a str>,
    pub name: Option<&'a str>,
    pub host: &'a str,
    pub username: &'a str,
    pub paths: &'a [String],
    pub tags: &'a [String],
    pub files: u64,
    pub dirs: u64,
    pub size_bytes: u64,
    pub stored_bytes: u64,
    pub compression_ratio: f64,
    pub root_checksum: String,
    pub parent: Option<String>,
    pub summary: &'a zenith_snapshot::snapshot::Summary,
}

pub fn view(s: &Snapshot) -> SnapshotView<'_> {
    SnapshotView {
        id: s.id.to_hex(),
        short_id: s.id.short(),
        time: s.time,
        kind: s.kind.as_deref(),
        name: s.name.as_deref(),
        host: &s.host,
        username: &s.username,
        paths: &s.paths,
        tags: &s.tags,
        files: s.summary.files,
        dirs: s.summary.dirs,
        size_bytes: s.summary.bytes,
        stored_bytes: s.summary.stored_bytes,
        compression_ratio: (s.compression_ratio() * 100.0).round() / 100.0,
        root_checksum: format!("blake3:{}", s.tree),
        parent: s.parent.map(|p| p.to_hex()),
        summary: &s.summary,
    }
}

pub fn list(filter: &FilterArgs, latest: Option<usize>, args: &RepoArgs, out: Out) -> CmdResult {
    let repo = args.open()?;
    let f = filter.to_filter();
    let mut snaps: Vec<Snapshot> = repo.snapshots()?.into_iter().filter(|s| f.matches(s)).collect();
    if let Some(n) = latest {
        let mut groups: BTreeMap<(String, Vec<String>), Vec<Snapshot>> = BTreeMap::new();
        for s in snaps {
            let mut p = s.paths.clone();
            p.sort();
            groups.entry((s.host.clone(), p)).or_default().push(s);
        }
        snaps = groups
            .into_values()
            .flat_map(|g| {
                let skip = g.len().saturating_sub(n);
                g.into_iter().skip(skip)
            })
            .collect();
        snaps.sort_by_key(|s| s.time);
    }
    if out.json() {
        out.print_json(&snaps.iter().map(view).collect::<Vec<_>>())?;
        return Ok(OK);
    }
    let mut t = table(&["id", "time", "type", "name", "host", "tags", "paths", "size"]);
    for s in &snaps {
        t.add_row(vec![
            s.id.short(),
            local_time(s.time),
            s.kind.clone().unwrap_or_default(),
            s.name.clone().unwrap_or_default(),
            s.host.clone(),
            s.tags.join(","),
            s.paths.join("\n"),
            bytes(s.summary.bytes),
        ]);
    }
    println!("{t}");
    out.note(format!("{} snapshots", snaps.len()));
    Ok(OK)
}

pub fn show(query: &str, args: &RepoArgs, out: Out) -> CmdResult {
    let repo = args.open()?;
    print_snapshot(&repo.find_snapshot(query)?, out)
}

/// The seed's metadata fields of one snapshot, as text or JSON.
pub fn print_snapshot(s: &Snapshot, out: Out) -> CmdResult {
    let v = view(s);
    if out.json() {
        out.print_json(&v)?;
        return Ok(OK);
    }
    println!("id:                {}", v.id);
    println!("time:              {}", local_time(s.time));
    println!("type:              {}", v.kind.unwrap_or("-"));
    println!("name:              {}", v.name.unwrap_or("-"));
    println!("host:              {} (user {})", v.host, v.username);
    println!("paths:             {}", v.paths.join(", "));
    println!(
        "tags:              {}",
        if v.tags.is_empty() {
            "-".into()
        } else {
            v.tags.join(", ")
        }
    );
    println!("files:             {} in {} directories", v.files, v.dirs);
    println!("size:              {} ({} bytes)", bytes(v.size_bytes), v.size_bytes);
    println!(
        "stored size:       {} ({} bytes)",
        bytes(v.stored_bytes),
        v.stored_bytes
    );
    println!("compression ratio: {:.2}", v.compression_ratio);
    println!("root checksum:     {}", v.root_checksum);
    println!("parent:            {}", v.parent.as_deref().unwrap_or("-"));
    println!(
        "created in:        {:.2}s by {}",
        s.summary.duration_secs, s.program_version
    );
    Ok(OK)
}

pub fn tag(query: &str, add: &[String], remove: &[String], args: &RepoArgs, out: Out) -> CmdResult {
    if add.is_empty() && remove.is_empty() {
        return Err(usage("nothing to do: give --add TAG and/or --remove TAG").into());
    }
    let repo = args.open()?;
    let _lock = Lock::acquire(
        repo.backend(),
        false,
        "snapshot tag",
        args.retry_lock.max(Duration::from_secs(0)),
    )?;
    let mut s = repo.find_snapshot(query)?;
    for t in add.iter().flat_map(|t| t.split(',')).filter(|t| !t.is_empty()) {
        if !s.has_tag(t) {
            s.tags.push(t.to_string());
        }
    }
    let drop: Vec<&str> = remove.iter().flat_map(|t| t.split(',')).collect();
    s.tags.retain(|t| !drop.contains(&t.as_str()));
    repo.save_snapshot(&s)?;
    if out.json() {
        out.print_json(&json!({"id": s.id, "tags": s.tags}))?;
    } else {
        println!(
            "snapshot {} tags: {}",
            s.id.short(),
            if s.tags.is_empty() {
                "-".into()
            } else {
                s.tags.join(", ")
            }
        );
    }
    Ok(OK)
}

pub fn ls(query: &str, path: Option<&str>, long: bool, args: &RepoArgs, out: Out) -> CmdResult {
    let repo = args.open()?;
    let s = repo.find_snapshot(query)?;
    let root = repo.load_tree(&s.tree)?;
    // Display paths as they were saved: the saved path, then names below it.
    let mut stack: Vec<(String, Node)> = Vec::new();
    for n in root.nodes.iter().rev() {
        let shown = s
            .paths
            .iter()
            .find(|p| p.rsplit('/').next() == Some(n.display_name().as_str()))
            .cloned()
            .unwrap_or_else(|| format!("/{}", n.display_name()));
        stack.push((shown, n.clone()));
    }
    let want = path.map(|p| p.trim_end_matches('/').to_string());
    let mut found = want.is_none();
    while let Some((p, n)) = stack.pop() {
        let inside = match &want {
            None => true,
            Some(w) => p == *w || p.starts_with(&format!("{w}/")),
        };
        let above = want.as_ref().is_some_and(|w| w.starts_with(&format!("{p}/")));
        if inside {
            found = true;
            print_entry(&p, &n, long, out)?;
        }
        if (inside || above)
            && let Some(sub) = n.subtree
        {
            let t = repo.load_tree(&sub)?;
            for c in t.nodes.into_iter().rev() {
                stack.push((format!("{p}/{}", c.display_name()), c));
            }
        }
    }
    if !found {
        return Err(zenith_snapshot::Error::PathNotInSnapshot {
            path: path.unwrap_or_default().into(),
            snapshot: s.id.short(),
        }
        .into());
    }
    Ok(OK)
}

fn kind_char(k: NodeKind) -> char {
    match k {
        NodeKind::File => '-',
        NodeKind::Dir => 'd',
        NodeKind::Symlink => 'l',
        NodeKind::Fifo => 'p',
        NodeKind::Socket => 's',
        NodeKind::CharDevice => 'c',
        NodeKind::BlockDevice => 'b',
    }
}

fn print_entry(path: &str, n: &Node, long: bool, out: Out) -> anyhow::Result<()> {
    let mtime = jiff::Timestamp::from_nanosecond(i128::from(n.mtime_ns)).unwrap_or_default();
    if out.json() {
        let line = json!({"type": "node", "data": {
            "path": path, "kind": n.kind, "mode": format!("{:o}", n.mode), "uid": n.uid, "gid": n.gid,
            "size": n.size, "mtime": mtime, "links": n.links,
            "target": n.target.as_ref().map(|t| String::from_utf8_lossy(t).into_owned()),
        }});
        println!("{line}");
    } else if long {
        let target = n
            .target
            .as_ref()
            .map(|t| format!(" -> {}", String::from_utf8_lossy(t)))
            .unwrap_or_default();
        println!(
            "{}{:04o} {:>5} {:>5} {:>12} {} {path}{target}",
            kind_char(n.kind),
            n.mode,
            n.uid,
            n.gid,
            n.size,
            local_time(mtime)
        );
    } else {
        println!("{path}");
    }
    Ok(())
}

pub fn diff(a: &str, b: &str, args: &RepoArgs, out: Out) -> CmdResult {
    let repo = args.open()?;
    let all = repo.snapshots()?;
    let sa = zenith_snapshot::snapshot::find(&all, a)?;
    let sb = zenith_snapshot::snapshot::find(&all, b)?;
    let (entries, stats) = zenith_snapshot::diff::diff(&repo, &sa.tree, &sb.tree)?;
    let entries: Vec<_> = entries
        .into_iter()
        .map(|mut e| {
            e.path = sb.saved_path(&e.path);
            e
        })
        .collect();
    if out.json() {
        out.print_json(&json!({"from": sa.id, "to": sb.id, "changes": entries, "stats": stats}))?;
        return Ok(OK);
    }
    for e in &entries {
        let mark = match e.change {
            Change::Added => "+",
            Change::Removed => "-",
            Change::Modified => "M",
            Change::Metadata => "U",
            Change::Type => "T",
        };
        let size = match (e.old_size, e.new_size) {
            (Some(o), Some(n)) if o != n => format!("  ({} → {})", bytes(o), bytes(n)),
            (None, Some(n)) | (Some(n), None) => format!("  ({})", bytes(n)),
            _ => String::new(),
        };
        println!("{mark} {}{size}", e.path);
    }
    println!(
        "{} added ({}), {} removed ({}), {} changed, {} metadata only",
        stats.added,
        bytes(stats.bytes_added),
        stats.removed,
        bytes(stats.bytes_removed),
        stats.modified,
        stats.metadata
    );
    Ok(OK)
}
