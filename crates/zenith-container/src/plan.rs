//! Which paths of a container's file system to fetch, from the engine's list of changes
//! (`docker diff`). Pure: the engine lists every changed path, the plan keeps the top-most ones
//! that hold data of their own, and leaves out mounts and what the engine manages itself.

use std::collections::BTreeMap;

/// How a path differs from the image (the engine's `Kind` 0, 1 and 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Modified,
    Added,
    Deleted,
}

/// Paths the engine sets up in every container; they are not the container's own changes.
pub const ENGINE_MANAGED: &[&str] = &[
    "/dev",
    "/proc",
    "/sys",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/.dockerenv",
    "/.dockerinit",
];

/// What to fetch and what to record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchPlan {
    /// Top-most added or modified paths to fetch whole, sorted.
    pub fetch: Vec<String>,
    /// Top-most deleted paths, sorted.
    pub deleted: Vec<String>,
}

/// `a` is `b` or one of its ancestors.
pub fn covers(a: &str, b: &str) -> bool {
    a == "/" || a == b || (b.starts_with(a) && b.as_bytes().get(a.len()) == Some(&b'/'))
}

/// The plan for `changes`, leaving out everything at or under `skip` (mount targets) and
/// [`ENGINE_MANAGED`]. A modified path with changes below it is a directory whose entries
/// changed: the entries are fetched, not the directory. A path above a mount target is never
/// fetched whole (the archive would include the mount's contents); its changed entries are.
pub fn plan(changes: &[(String, Change)], skip: &[String]) -> FetchPlan {
    let skipped = |p: &str| {
        skip.iter()
            .map(String::as_str)
            .chain(ENGINE_MANAGED.iter().copied())
            .any(|s| covers(s, p))
    };
    let holds_mount = |p: &str| skip.iter().any(|s| covers(p, s) && p != s);
    let all: BTreeMap<&str, Change> = changes
        .iter()
        .map(|(p, c)| (p.trim_end_matches('/'), *c))
        .filter(|(p, _)| p.starts_with('/') && p.len() > 1 && !p.split('/').any(|c| c == ".." || c == "."))
        .collect();
    // Judged on all changes: a directory whose only changed entry is engine-managed (/etc
    // for /etc/hosts) is not the container's change either.
    let has_changes_below = |p: &str| {
        all.range(p..)
            .skip(1)
            .take_while(|(q, _)| q.starts_with(p))
            .any(|(q, _)| covers(p, q))
    };
    let mut fetch: Vec<&str> = Vec::new();
    let mut deleted: Vec<&str> = Vec::new();
    for (&path, &change) in all.iter().filter(|(p, _)| !skipped(p)) {
        match change {
            Change::Deleted => deleted.push(path),
            Change::Modified if has_changes_below(path) => {}
            Change::Modified | Change::Added if holds_mount(path) => {}
            Change::Modified | Change::Added => fetch.push(path),
        }
    }
    FetchPlan {
        fetch: top_most(fetch),
        deleted: top_most(deleted),
    }
}

/// Sorted paths without those below another one of them.
fn top_most(sorted: Vec<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in sorted {
        if !out.iter().any(|o| covers(o, p)) {
            out.push(p.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use Change::*;

    fn run(changes: &[(&str, Change)], skip: &[&str]) -> FetchPlan {
        let changes: Vec<(String, Change)> = changes.iter().map(|(p, c)| (p.to_string(), *c)).collect();
        let skip: Vec<String> = skip.iter().map(|s| s.to_string()).collect();
        plan(&changes, &skip)
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn added_directories_are_fetched_whole() {
        let p = run(
            &[
                ("/tmp", Modified),
                ("/tmp/a", Added),
                ("/tmp/a/b", Added),
                ("/tmp/a/b/c", Added),
            ],
            &[],
        );
        assert_eq!(p.fetch, strings(&["/tmp/a"]));
        assert!(p.deleted.is_empty());
    }

    #[test]
    fn a_modified_file_is_fetched_and_its_directory_is_not() {
        let p = run(
            &[("/etc", Modified), ("/etc/passwd", Modified), ("/etcetera", Added)],
            &[],
        );
        assert_eq!(p.fetch, strings(&["/etc/passwd", "/etcetera"]));
    }

    #[test]
    fn deletions_are_recorded_top_most() {
        let p = run(
            &[
                ("/usr", Modified),
                ("/usr/share", Deleted),
                ("/usr/share/doc", Deleted),
                ("/etc", Modified),
            ],
            &[],
        );
        assert_eq!(p.deleted, strings(&["/usr/share"]));
        // /etc changed but lists nothing below: its own metadata changed, so it is fetched.
        assert_eq!(p.fetch, strings(&["/etc"]));
    }

    #[test]
    fn mounts_and_engine_files_are_left_out() {
        let p = run(
            &[
                ("/data", Added),
                ("/data/x", Added),
                ("/etc", Modified),
                ("/etc/hosts", Added),
                ("/dev/null", Modified),
                ("/tmp/f", Added),
            ],
            &["/data"],
        );
        assert_eq!(p.fetch, strings(&["/tmp/f"]));
    }

    #[test]
    fn a_directory_above_a_mount_is_fetched_entry_by_entry() {
        let p = run(
            &[
                ("/srv", Added),
                ("/srv/app", Added),
                ("/srv/app/data", Added),
                ("/srv/app/config.toml", Added),
                ("/srv/other", Added),
            ],
            &["/srv/app/data"],
        );
        assert_eq!(p.fetch, strings(&["/srv/app/config.toml", "/srv/other"]));
    }

    #[test]
    fn hostile_paths_are_ignored() {
        let p = run(&[("relative", Added), ("/a/../b", Added), ("/", Modified)], &[]);
        assert_eq!(p, FetchPlan::default());
    }

    #[test]
    fn covers_compares_whole_components() {
        assert!(covers("/a", "/a/b"));
        assert!(covers("/a", "/a"));
        assert!(!covers("/a", "/ab"));
        assert!(covers("/", "/x"));
    }
}
