//! Checking a repository: every file's name against its hash, every index, snapshot and tree
//! against its seal, every referenced blob against the index, and with `read_data` every byte
//! of (a subset of) the packs. Each problem names the damaged object and the snapshots and
//! files it breaks.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::backend::FileKind;
use crate::error::{Error, Result};
use crate::id::{Id, IdMap, IdSet};
use crate::keys::KeyFile;
use crate::pack::BlobKind;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::snapshot::Snapshot;
use crate::tree::NodeKind;

/// How much pack data to read back.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum ReadData {
    /// Structure only.
    #[default]
    None,
    All,
    /// Group `n` of `t` (1-based), chosen by pack id, so `1/t`…`t/t` cover everything.
    Group {
        n: u64,
        t: u64,
    },
    /// A random share of the packs.
    Percent(f64),
    /// Random packs until this many bytes.
    Bytes(u64),
}

impl std::str::FromStr for ReadData {
    type Err = Error;
    fn from_str(s: &str) -> Result<ReadData> {
        let bad = || {
            Error::InvalidInput(format!(
                "--read-data-subset {s:?}: use n/t (e.g. 2/5), a percentage (10%) or a size (500M)"
            ))
        };
        if let Some((n, t)) = s.split_once('/') {
            let (n, t): (u64, u64) = (
                n.trim().parse().map_err(|_| bad())?,
                t.trim().parse().map_err(|_| bad())?,
            );
            if t == 0 || n == 0 || n > t {
                return Err(bad());
            }
            return Ok(ReadData::Group { n, t });
        }
        if let Some(p) = s.strip_suffix('%') {
            let p: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(p > 0.0 && p <= 100.0) {
                return Err(bad());
            }
            return Ok(ReadData::Percent(p));
        }
        let (num, mult) = match s.trim().to_ascii_uppercase() {
            x if x.ends_with('K') => (x[..x.len() - 1].to_string(), 1u64 << 10),
            x if x.ends_with('M') => (x[..x.len() - 1].to_string(), 1 << 20),
            x if x.ends_with('G') => (x[..x.len() - 1].to_string(), 1 << 30),
            x if x.ends_with('T') => (x[..x.len() - 1].to_string(), 1 << 40),
            _ => return Err(bad()),
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        Ok(ReadData::Bytes(n * mult))
    }
}

/// One thing found wrong.
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    /// The damaged object: `pack <id>`, `blob <id>`, `index file <id>`, `snapshot <id>` …
    pub object: String,
    pub detail: String,
    /// Snapshots and files this breaks: `snapshot <short>: <path>`.
    pub affects: Vec<String>,
}

/// The outcome of a check.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    pub snapshots: usize,
    pub trees: usize,
    pub packs: usize,
    pub packs_read: usize,
    pub bytes_read: u64,
    pub blobs_read: u64,
    pub errors: Vec<Problem>,
    /// Harmless findings (e.g. packs no index names yet, left by an interrupted write).
    pub warnings: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Verify the repository, checking the trees of `only` (all snapshots when empty).
pub fn verify(repo: &Repository, only: &[Id], read: ReadData, progress: &dyn Progress) -> Result<VerifyReport> {
    let mut rep = VerifyReport::default();
    let backend = repo.backend();
    let err = |rep: &mut VerifyReport, object: String, detail: String| {
        rep.errors.push(Problem {
            object,
            detail,
            affects: Vec::new(),
        })
    };

    progress.start("keys and index", None);
    for k in backend.list(FileKind::Key)? {
        let bytes = backend.read(FileKind::Key, &k.name)?;
        if Id::hash(&bytes).to_hex() != k.name {
            err(
                &mut rep,
                format!("key file {}", k.name),
                "contents do not match its name".into(),
            );
        } else if KeyFile::load(backend, &k.name).is_err() {
            err(&mut rep, format!("key file {}", k.name), "not a valid key file".into());
        }
    }
    let mut index = crate::index::Index::default();
    // (pack, blob) pairs the index files claim, to compare with pack headers.
    let mut claimed: IdMap<Vec<crate::pack::PackEntry>> = IdMap::default();
    for f in backend.list(FileKind::Index)? {
        let bytes = backend.read(FileKind::Index, &f.name)?;
        if Id::hash(&bytes).to_hex() != f.name {
            err(
                &mut rep,
                format!("index file {}", f.name),
                "contents do not match its name".into(),
            );
            continue;
        }
        match crate::index::IndexFile::open(&bytes, repo.cipher(), &f.name) {
            Ok(file) => {
                for p in &file.packs {
                    claimed.entry(p.id).or_insert_with(|| p.blobs.clone());
                }
                index.add_file(file);
            }
            Err(e) => err(&mut rep, format!("index file {}", f.name), e.to_string()),
        }
    }

    let on_disk: BTreeMap<String, u64> = backend
        .list(FileKind::Pack)?
        .into_iter()
        .map(|l| (l.name, l.size))
        .collect();
    rep.packs = index.pack_count();
    let mut missing_packs = IdSet::default();
    for (_, id, size) in index.packs() {
        match on_disk.get(&id.to_hex()) {
            None => {
                missing_packs.insert(*id);
                err(&mut rep, format!("pack {id}"), "named by the index but missing".into())
            }
            Some(s) if *s != size => err(
                &mut rep,
                format!("pack {id}"),
                format!("{s} bytes on disk, the index says {size}"),
            ),
            Some(_) => {}
        }
    }
    for name in on_disk.keys() {
        let known = name.parse::<Id>().is_ok_and(|id| index.has_pack(&id));
        if !known {
            rep.warnings.push(format!(
                "pack {name} is not named by any index (left by an interrupted write; `zenith snapshot prune` removes it)"
            ));
        }
    }

    progress.start("snapshots and trees", None);
    let mut snapshots = Vec::new();
    for f in backend.list(FileKind::Snapshot)? {
        let Ok(id) = f.name.parse::<Id>() else {
            rep.warnings.push(format!("unexpected file snapshots/{}", f.name));
            continue;
        };
        match repo.load_snapshot(&id) {
            Ok(s) => snapshots.push(s),
            Err(e) => err(&mut rep, format!("snapshot {id}"), e.to_string()),
        }
    }
    if !only.is_empty() {
        snapshots.retain(|s| only.contains(&s.id));
    }
    rep.snapshots = snapshots.len();

    // Walk every tree once; record missing blobs and unreadable trees.
    let index = std::sync::Arc::new(index);
    let mut reader = repo.blob_reader_with(index.clone())?;
    let mut bad_blobs: IdMap<String> = IdMap::default();
    for (id, loc) in index.blobs() {
        if missing_packs.contains(index.pack_id(loc.pack)) {
            bad_blobs.insert(*id, format!("its pack {} is missing", index.pack_id(loc.pack).short()));
        }
    }
    let mut seen_trees = IdSet::default();
    for s in &snapshots {
        let mut stack = vec![s.tree];
        while let Some(t) = stack.pop() {
            if !seen_trees.insert(t) {
                continue;
            }
            progress.inc(1);
            match reader.load_tree(&t) {
                Ok(tree) => {
                    for n in &tree.nodes {
                        if let Some(sub) = n.subtree {
                            stack.push(sub);
                        }
                        for id in &n.content {
                            if bad_blobs.contains_key(id) {
                                continue;
                            }
                            match index.get(id) {
                                Some(l) if l.kind == BlobKind::Data => {}
                                _ => {
                                    bad_blobs.insert(*id, "data blob missing from the index".into());
                                }
                            }
                        }
                    }
                }
                Err(e) => {
                    bad_blobs.insert(t, e.to_string());
                }
            }
        }
    }
    rep.trees = seen_trees.len();

    if read != ReadData::None {
        let selected = select_packs(&index, read);
        let total: u64 = selected.iter().map(|(_, s)| *s).sum();
        progress.start("reading packs", Some(total));
        for (id, size) in selected {
            read_pack(repo, &index, &claimed, &id, &mut rep, &mut bad_blobs)?;
            rep.packs_read += 1;
            rep.bytes_read += size;
            progress.inc(size);
        }
    }
    progress.finish();

    if !bad_blobs.is_empty() {
        let affects = affected_files(&mut reader, &snapshots, &bad_blobs);
        let mut ids: Vec<_> = bad_blobs.into_iter().collect();
        ids.sort();
        for (id, detail) in ids {
            rep.errors.push(Problem {
                object: format!("blob {id}"),
                detail,
                affects: affects.get(&id).cloned().unwrap_or_default(),
            });
        }
    }
    Ok(rep)
}

fn select_packs(index: &crate::index::Index, read: ReadData) -> Vec<(Id, u64)> {
    let mut all: Vec<(Id, u64)> = index.packs().map(|(_, id, s)| (*id, s)).collect();
    all.sort();
    match read {
        ReadData::None => Vec::new(),
        ReadData::All => all,
        ReadData::Group { n, t } => all
            .into_iter()
            .filter(|(id, _)| u64::from_be_bytes(id.0[..8].try_into().unwrap_or_default()) % t == n - 1)
            .collect(),
        ReadData::Percent(p) => {
            let want = ((all.len() as f64) * p / 100.0).ceil() as usize;
            shuffle(&mut all);
            all.truncate(want);
            all
        }
        ReadData::Bytes(limit) => {
            shuffle(&mut all);
            let mut sum = 0;
            all.into_iter()
                .take_while(|(_, s)| {
                    let take = sum < limit;
                    sum += s;
                    take
                })
                .collect()
        }
    }
}

fn shuffle(v: &mut [(Id, u64)]) {
    for i in (1..v.len()).rev() {
        let mut r = [0u8; 8];
        crate::crypto::fill_random(&mut r);
        let j = (u64::from_le_bytes(r) % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

fn read_pack(
    repo: &Repository,
    index: &crate::index::Index,
    claimed: &IdMap<Vec<crate::pack::PackEntry>>,
    id: &Id,
    rep: &mut VerifyReport,
    bad_blobs: &mut IdMap<String>,
) -> Result<()> {
    let name = id.to_hex();
    let object = format!("pack {name}");
    let Ok(bytes) = repo.backend().read(FileKind::Pack, &name) else {
        return Ok(()); // already reported as missing
    };
    let claimed_entries = claimed.get(id).cloned().unwrap_or_default();
    let hash_ok = Id::hash(&bytes) == *id;
    if !hash_ok {
        rep.errors.push(Problem {
            object: object.clone(),
            detail: "contents do not match its name (the file was altered)".into(),
            affects: Vec::new(),
        });
    }
    // Check each blob the index places in this pack, by the index's own coordinates, so a
    // damaged header does not hide which blobs are still good.
    for e in &claimed_entries {
        let start = e.offset as usize;
        let end = start + e.length as usize;
        let res = match bytes.get(start..end) {
            Some(sealed) => crate::pack::open_blob(
                sealed,
                e.kind,
                &e.id,
                e.compressed,
                e.raw_len,
                repo.cipher(),
                repo.key(),
            )
            .map(|_| ()),
            None => Err(Error::corrupt(
                format!("blob {}", e.id),
                "lies beyond the end of its pack",
            )),
        };
        rep.blobs_read += 1;
        if let Err(err) = res {
            // Only report a blob as damaged if no other pack holds a good copy the index uses.
            let indexed_here = index.get(&e.id).is_some_and(|l| index.pack_id(l.pack) == id);
            if indexed_here {
                bad_blobs.insert(e.id, format!("in pack {}: {err}", id.short()));
            } else {
                rep.warnings.push(format!(
                    "redundant copy of blob {} in pack {} is damaged",
                    e.id,
                    id.short()
                ));
            }
        }
    }
    match crate::pack::parse_header(&bytes, bytes.len() as u64, repo.cipher(), &name) {
        Ok(header) if hash_ok && header.len() != claimed_entries.len() => rep.errors.push(Problem {
            object,
            detail: format!(
                "header lists {} blobs, the index {}",
                header.len(),
                claimed_entries.len()
            ),
            affects: Vec::new(),
        }),
        Ok(_) => {}
        Err(e) => rep.errors.push(Problem {
            object,
            detail: format!("header: {e}"),
            affects: Vec::new(),
        }),
    }
    Ok(())
}

/// For each bad blob, the snapshot files and directories that use it.
fn affected_files(
    reader: &mut crate::repo::BlobReader<'_>,
    snapshots: &[Snapshot],
    bad: &IdMap<String>,
) -> IdMap<Vec<String>> {
    let mut out: IdMap<Vec<String>> = IdMap::default();
    for s in snapshots {
        let mut stack = vec![(s.tree, String::new())];
        if bad.contains_key(&s.tree) {
            out.entry(s.tree)
                .or_default()
                .push(format!("snapshot {}: /", s.id.short()));
        }
        while let Some((t, prefix)) = stack.pop() {
            let Ok(tree) = reader.load_tree(&t) else {
                continue;
            };
            for n in &tree.nodes {
                let path = format!("{prefix}/{}", n.display_name());
                if let Some(sub) = n.subtree {
                    if bad.contains_key(&sub) {
                        out.entry(sub).or_default().push(format!(
                            "snapshot {}: {}/ (and all below)",
                            s.id.short(),
                            s.saved_path(&path)
                        ));
                    } else {
                        stack.push((sub, path.clone()));
                    }
                }
                if n.kind == NodeKind::File {
                    for id in &n.content {
                        if bad.contains_key(id) {
                            let v = out.entry(*id).or_default();
                            let entry = format!("snapshot {}: {}", s.id.short(), s.saved_path(&path));
                            if !v.contains(&entry) {
                                v.push(entry);
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_syntax() {
        assert_eq!("2/5".parse::<ReadData>().unwrap(), ReadData::Group { n: 2, t: 5 });
        assert_eq!("10%".parse::<ReadData>().unwrap(), ReadData::Percent(10.0));
        assert_eq!("5M".parse::<ReadData>().unwrap(), ReadData::Bytes(5 << 20));
        for bad in ["0/5", "6/5", "x/2", "0%", "101%", "abc", "5"] {
            assert!(bad.parse::<ReadData>().is_err(), "{bad}");
        }
    }
}
