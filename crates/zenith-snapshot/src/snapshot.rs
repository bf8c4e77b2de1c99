//! Snapshot records: what was saved, when, from where, under which labels, and how much it
//! cost to store. Each lives in its own sealed file named by a random id that never changes,
//! so revisions and tags can refer to it for good.

use serde::{Deserialize, Serialize};

use crate::crypto::Cipher;
use crate::error::{Error, Result};
use crate::id::Id;

/// Counts gathered while a snapshot was created.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub files: u64,
    pub dirs: u64,
    pub others: u64,
    /// Total size of the files in the snapshot.
    pub bytes: u64,
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    /// Bytes actually read from disk (unchanged files are not read).
    pub bytes_read: u64,
    pub blobs_added: u64,
    /// Plaintext bytes of the blobs this snapshot added.
    pub bytes_added: u64,
    /// Bytes those blobs take in the repository after compression and encryption.
    pub bytes_added_stored: u64,
    /// Stored bytes of every distinct blob the snapshot references.
    pub stored_bytes: u64,
    pub duration_secs: f64,
    #[serde(default)]
    pub errors: u64,
}

/// One snapshot.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    #[serde(skip)]
    pub id: Id,
    pub time: jiff::Timestamp,
    /// The label from `--type` (system, config, data, models, full, or any other).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub host: String,
    pub username: String,
    /// Absolute paths that were saved; the root tree holds one entry per path.
    pub paths: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub tree: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Id>,
    pub summary: Summary,
    pub program_version: String,
}

impl Snapshot {
    fn aad(id: &Id) -> Vec<u8> {
        let mut aad = b"zenith snapshot v1".to_vec();
        aad.extend_from_slice(id.as_bytes());
        aad
    }

    pub fn seal(&self, cipher: &Cipher) -> Result<Vec<u8>> {
        let json = serde_json::to_vec(self).map_err(|e| Error::corrupt("snapshot", e))?;
        Ok(cipher.seal(&json, &Self::aad(&self.id)))
    }

    pub fn open(bytes: &[u8], id: &Id, cipher: &Cipher) -> Result<Snapshot> {
        let what = format!("snapshot {id}");
        let json = cipher.open(bytes, &Self::aad(id), &what)?;
        let mut s: Snapshot = serde_json::from_slice(&json).map_err(|e| Error::corrupt(&what, e))?;
        s.id = *id;
        Ok(s)
    }

    /// Compression ratio: file bytes over stored bytes (≥ 1 when compression and dedup help).
    pub fn compression_ratio(&self) -> f64 {
        if self.summary.stored_bytes == 0 {
            1.0
        } else {
            self.summary.bytes as f64 / self.summary.stored_bytes as f64
        }
    }

    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    /// The path as saved for an entry of the root tree: `/name/rest` becomes
    /// `/the/saved/name/rest` (root entries are named by the last component of each saved path).
    pub fn saved_path(&self, rooted: &str) -> String {
        let trimmed = rooted.trim_start_matches('/');
        let (first, rest) = trimmed.split_once('/').map_or((trimmed, ""), |(a, b)| (a, b));
        match self.paths.iter().find(|p| p.rsplit('/').next() == Some(first)) {
            Some(saved) if rest.is_empty() => saved.clone(),
            Some(saved) => format!("{saved}/{rest}"),
            None => rooted.to_string(),
        }
    }

    /// The snapshot as the retention policy sees it.
    pub fn forget_item(&self) -> crate::forget::ForgetItem {
        crate::forget::ForgetItem {
            id: self.id.to_hex(),
            time: self.time,
            host: self.host.clone(),
            paths: self.paths.clone(),
            tags: self.tags.clone(),
        }
    }
}

/// Which snapshots a listing or policy considers.
#[derive(Clone, Debug, Default)]
pub struct SnapshotFilter {
    pub kind: Option<String>,
    pub hosts: Vec<String>,
    /// Each entry is a comma-separated set of tags that must all be present; entries OR.
    pub tags: Vec<String>,
    pub paths: Vec<String>,
    pub name: Option<String>,
}

impl SnapshotFilter {
    pub fn matches(&self, s: &Snapshot) -> bool {
        if let Some(k) = &self.kind
            && s.kind.as_deref() != Some(k.as_str())
        {
            return false;
        }
        if let Some(n) = &self.name
            && s.name.as_deref() != Some(n.as_str())
        {
            return false;
        }
        if !self.hosts.is_empty() && !self.hosts.contains(&s.host) {
            return false;
        }
        if !self.paths.is_empty() && !self.paths.iter().all(|p| s.paths.contains(p)) {
            return false;
        }
        if !self.tags.is_empty()
            && !self
                .tags
                .iter()
                .any(|set| set.split(',').filter(|t| !t.is_empty()).all(|t| s.has_tag(t)))
        {
            return false;
        }
        true
    }
}

/// Resolve a user's reference to one snapshot of `all` (oldest first): `latest`, a full id,
/// a unique id prefix of at least 4 characters, a name, or a tag (newest match wins).
pub fn find<'a>(all: &'a [Snapshot], query: &str) -> Result<&'a Snapshot> {
    if query == "latest" {
        return all.last().ok_or(Error::NoSnapshots);
    }
    let is_hex = query.len() >= 4 && query.chars().all(|c| c.is_ascii_hexdigit());
    if is_hex {
        let q = query.to_ascii_lowercase();
        let hits: Vec<_> = all.iter().filter(|s| s.id.to_hex().starts_with(&q)).collect();
        match hits.as_slice() {
            [one] => return Ok(one),
            [] => {}
            many => {
                return Err(Error::AmbiguousSnapshot {
                    query: query.into(),
                    candidates: many.iter().map(|s| s.id.short()).collect::<Vec<_>>().join(", "),
                });
            }
        }
    }
    if let Some(s) = all.iter().rev().find(|s| s.name.as_deref() == Some(query)) {
        return Ok(s);
    }
    if let Some(s) = all.iter().rev().find(|s| s.has_tag(query)) {
        return Ok(s);
    }
    Err(Error::NoSuchSnapshot(query.into()))
}

/// This machine's host name.
pub fn hostname() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

/// The user running zenith.
pub fn username() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| rustix::process::getuid().as_raw().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(name: Option<&str>, tags: &[&str], secs: i64) -> Snapshot {
        Snapshot {
            id: Id::random(),
            time: jiff::Timestamp::from_second(secs).unwrap(),
            kind: Some("data".into()),
            name: name.map(Into::into),
            host: "h".into(),
            username: "u".into(),
            paths: vec!["/p".into()],
            tags: tags.iter().map(|t| t.to_string()).collect(),
            tree: Id::random(),
            parent: None,
            summary: Summary::default(),
            program_version: "test".into(),
        }
    }

    #[test]
    fn find_by_every_kind_of_reference() {
        let all = vec![
            snap(Some("a"), &["x"], 1),
            snap(Some("a"), &["y"], 2),
            snap(None, &["x"], 3),
        ];
        assert_eq!(find(&all, "latest").unwrap().id, all[2].id);
        assert_eq!(find(&all, &all[0].id.to_hex()).unwrap().id, all[0].id);
        assert_eq!(find(&all, &all[1].id.short()).unwrap().id, all[1].id);
        assert_eq!(find(&all, "a").unwrap().id, all[1].id);
        assert_eq!(find(&all, "x").unwrap().id, all[2].id);
        assert!(matches!(find(&all, "nope"), Err(Error::NoSuchSnapshot(_))));
        assert!(matches!(find(&[], "latest"), Err(Error::NoSnapshots)));
    }

    #[test]
    fn seal_binds_the_id() {
        let cipher = crate::crypto::MasterKey::generate().cipher();
        let s = snap(None, &[], 5);
        let sealed = s.seal(&cipher).unwrap();
        assert_eq!(Snapshot::open(&sealed, &s.id, &cipher).unwrap(), s);
        assert!(Snapshot::open(&sealed, &Id::random(), &cipher).is_err());
    }

    #[test]
    fn tag_filter_ands_within_and_ors_across() {
        let s = snap(None, &["a", "b"], 1);
        let f = |tags: &[&str]| SnapshotFilter {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        };
        assert!(f(&["a,b"]).matches(&s));
        assert!(!f(&["a,c"]).matches(&s));
        assert!(f(&["a,c", "b"]).matches(&s));
    }
}
