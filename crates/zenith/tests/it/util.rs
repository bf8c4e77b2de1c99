//! A temporary workspace with a repository and helpers to run `zenith` in it.

use std::path::{Path, PathBuf};
use std::process::Output;

pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    /// A workspace with an initialized repository at `repo/`.
    pub fn new() -> Env {
        let env = Env::empty();
        env.ok(&["repo", "init"]);
        env
    }

    pub fn empty() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn repo(&self) -> PathBuf {
        self.path("repo")
    }

    /// A command with the repository and password in the environment.
    pub fn cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin!("zenith"));
        c.current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ZENITH_REPO", self.repo())
            .env("ZENITH_PASSWORD", "secret")
            .env("ZENITH_INSECURE_TEST_KDF", "1")
            .env("TZ", "UTC")
            .env("USER", "tester");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Run with extra environment variables.
    pub fn run_env<V: AsRef<std::ffi::OsStr>>(&self, args: &[&str], vars: &[(&str, V)]) -> Output {
        let mut c = self.cmd();
        c.args(args);
        for (k, v) in vars {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    /// Run and expect success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "zenith {args:?} failed ({:?}):\n{}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run and expect exit `code`; returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "zenith {args:?}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Run with JSON output and parse it.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend(["--output-format", "json"]);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    pub fn write(&self, rel: &str, data: &[u8]) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
}

/// Files of a tree and their contents, for comparisons.
pub fn contents(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(root).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
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
