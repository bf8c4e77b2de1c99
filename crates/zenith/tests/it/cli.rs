//! The commands as a user runs them: outputs, JSON, and exit codes for bad input.

use crate::util::*;

#[test]
fn create_list_show_tag_ls_diff() {
    let env = Env::new();
    env.write("data/a.txt", b"alpha\n");
    env.write("data/sub/b.bin", &noise(100_000, 1));
    let first = env.json(&[
        "snapshot",
        "create",
        "data",
        "--type",
        "data",
        "--tag",
        "pre-update-v087",
        "--name",
        "nightly",
    ]);
    assert_eq!(first["summary"]["files"], 2);
    assert!(first["summary"]["bytes_added"].as_u64().unwrap() >= 100_006);
    let id = first["id"].as_str().unwrap().to_string();

    env.write("data/c.txt", b"new\n");
    env.write("data/a.txt", b"alpha changed\n");
    env.ok(&["snapshot", "create", "data"]);

    let list = env.json(&["snapshot", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let filtered = env.json(&["snapshot", "list", "--type", "data"]);
    assert_eq!(filtered.as_array().unwrap().len(), 1);
    assert_eq!(
        env.json(&["snapshot", "list", "--latest", "1"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Every way of naming a snapshot reaches the same one.
    for q in [&id[..], &id[..8], "nightly", "pre-update-v087"] {
        let show = env.json(&["snapshot", "show", q]);
        assert_eq!(show["id"], id, "{q}");
        assert_eq!(show["type"], "data");
        assert!(show["root_checksum"].as_str().unwrap().starts_with("blake3:"));
        assert!(show["compression_ratio"].as_f64().unwrap() > 0.0);
    }
    let text = env.ok(&["snapshot", "show", "latest"]);
    assert!(text.contains("parent:") && text.contains(&id), "{text}");

    env.ok(&[
        "snapshot",
        "tag",
        "nightly",
        "--add",
        "golden",
        "--remove",
        "pre-update-v087",
    ]);
    let show = env.json(&["snapshot", "show", "golden"]);
    assert_eq!(show["tags"], serde_json::json!(["golden"]));
    assert_eq!(show["id"], id, "tagging keeps the id");

    let ls = env.ok(&["snapshot", "ls", "latest"]);
    assert!(ls.contains("/data/sub/b.bin") && ls.contains("/data/c.txt"), "{ls}");

    let diff = env.ok(&["snapshot", "diff", &id, "latest"]);
    let data = env.path("data").canonicalize().unwrap();
    assert!(diff.contains(&format!("+ {}/c.txt", data.display())), "{diff}");
    assert!(diff.contains(&format!("M {}/a.txt", data.display())), "{diff}");
    assert!(!diff.contains("b.bin"), "{diff}");
}

#[test]
fn bad_input_gets_clear_errors_and_exit_codes() {
    let env = Env::empty();
    let err = env.fails(&["snapshot", "list"], 10);
    assert!(
        err.contains("not a zenith repository") && err.contains("repo init"),
        "{err}"
    );
    env.ok(&["repo", "init"]);
    let err = env.fails(&["repo", "init"], 2);
    assert!(err.contains("already holds a zenith repository"), "{err}");

    let err = env.run_env(&["snapshot", "list"], &[("ZENITH_PASSWORD", "wrong")]);
    assert_eq!(err.status.code(), Some(11));
    assert!(String::from_utf8_lossy(&err.stderr).contains("wrong password"));

    let err = env.fails(&["snapshot", "show", "deadbeef"], 2);
    assert!(err.contains("no snapshot matches \"deadbeef\""), "{err}");
    let err = env.fails(&["snapshot", "create", "does-not-exist"], 1);
    assert!(err.contains("does-not-exist"), "{err}");
    env.fails(&["snapshot", "frobnicate"], 2);
    let err = env.fails(&["snapshot", "forget"], 2);
    assert!(err.contains("--keep-last"), "{err}");
    let err = env.fails(&["snapshot", "forget", "--keep-within", "3x"], 2);
    assert!(err.contains("3x"), "{err}");
    let err = env.fails(&["snapshot", "verify", "--read-data-subset", "9/4"], 2);
    assert!(err.contains("n/t"), "{err}");

    // No password anywhere and no terminal.
    let out = env
        .cmd()
        .args(["snapshot", "list"])
        .env_remove("ZENITH_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ZENITH_PASSWORD"));
}

#[test]
fn chunk_size_is_chosen_at_init_and_checked() {
    let env = Env::empty();
    for bad in ["48KiB", "1KiB", "2MiB", "lots"] {
        let err = env.fails(&["repo", "init", "--chunk-size", bad], 2);
        assert!(err.contains("chunk"), "{bad}: {err}");
    }
    assert!(!env.repo().join("config").exists(), "a refused init writes nothing");
    let err = env.fails(
        &[
            "repo",
            "init",
            "--chunk-size",
            "16KiB",
            "--copy-chunker-params",
            "elsewhere",
        ],
        2,
    );
    assert!(err.contains("cannot be used with"), "{err}");
    let init = env.json(&["repo", "init", "--chunk-size", "16KiB"]);
    let chunker = &init["config"]["chunker"];
    assert_eq!(
        (&chunker["min"], &chunker["avg"], &chunker["max"]),
        (&4096.into(), &16384.into(), &65536.into())
    );
    // Data written with smaller chunks reads back whole.
    env.write("data/db", &noise(3 << 20, 4));
    env.ok(&["snapshot", "create", "data"]);
    env.ok(&["snapshot", "restore", "latest", "--target", "out"]);
    assert_eq!(std::fs::read(env.path("out/db")).unwrap(), noise(3 << 20, 4));
}

#[test]
fn password_file_and_keys() {
    let env = Env::new();
    env.write("pw", b"secret\n");
    env.cmd()
        .args(["snapshot", "list"])
        .env_remove("ZENITH_PASSWORD")
        .env("ZENITH_PASSWORD_FILE", env.path("pw"))
        .output()
        .unwrap()
        .status
        .success()
        .then_some(())
        .expect("password file opens the repository");
    let added = env.run_env(&["repo", "key", "add"], &[("ZENITH_NEW_PASSWORD", "second")]);
    assert!(added.status.success());
    let keys = env.json(&["repo", "key", "list"]);
    assert_eq!(keys.as_array().unwrap().len(), 2);
    let other = keys.as_array().unwrap().iter().find(|k| k["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The second key opens the repository too, then is removed.
    let out = env.run_env(&["snapshot", "list"], &[("ZENITH_PASSWORD", "second")]);
    assert!(out.status.success());
    env.ok(&["repo", "key", "remove", &other[..8]]);
    let out = env.run_env(&["snapshot", "list"], &[("ZENITH_PASSWORD", "second")]);
    assert_eq!(out.status.code(), Some(11));
    // Changing the password replaces the key in use.
    let out = env.run_env(&["repo", "key", "passwd"], &[("ZENITH_NEW_PASSWORD", "third")]);
    assert!(out.status.success());
    assert_eq!(env.run(&["snapshot", "list"]).status.code(), Some(11));
    let out = env.run_env(&["snapshot", "list"], &[("ZENITH_PASSWORD", "third")]);
    assert!(out.status.success());
}

#[test]
fn verify_names_damage_and_exits_1() {
    let env = Env::new();
    env.write("data/f", &noise(50_000, 4));
    env.ok(&["snapshot", "create", "data"]);
    assert!(
        env.ok(&["snapshot", "verify", "--read-data"])
            .contains("no errors were found")
    );
    env.ok(&["snapshot", "verify", "--read-data-subset", "1/2"]);
    env.ok(&["snapshot", "verify", "--read-data-subset", "50%"]);
    // Damage the biggest pack.
    let mut packs: Vec<_> = walk(&env.repo().join("data"));
    packs.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    let victim = packs.last().unwrap();
    let mut bytes = std::fs::read(victim).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(victim, bytes).unwrap();
    let out = env.run(&["snapshot", "verify", "--read-data"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let name = victim.file_name().unwrap().to_string_lossy();
    assert!(text.contains(&*name), "{text}");
    assert!(text.contains("breaks snapshot") && text.contains("/data/f"), "{text}");
    let json = env.run(&["snapshot", "verify", "--read-data", "--output-format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(!v["errors"].as_array().unwrap().is_empty());
    // Restore of the damaged file fails loudly.
    let out = env.run(&["snapshot", "restore", "latest", "--target", "out"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("DAMAGED"));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn forget_explains_and_prune_frees() {
    let env = Env::new();
    for i in 0..4 {
        env.write("data/f", &noise(200_000, i));
        env.ok(&["snapshot", "create", "data"]);
    }
    let dry = env.json(&["snapshot", "forget", "--keep-last", "2", "--dry-run"]);
    let decisions = dry["groups"][0]["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 4);
    assert_eq!(decisions.iter().filter(|d| d["keep"] == true).count(), 2);
    assert!(decisions[0]["reasons"][0].as_str().unwrap().contains("last snapshot"));
    assert_eq!(
        env.json(&["snapshot", "list"]).as_array().unwrap().len(),
        4,
        "dry run changes nothing"
    );
    let text = env.ok(&["snapshot", "forget", "--keep-last", "2", "--prune"]);
    assert!(text.contains("removed 2 snapshots"), "{text}");
    assert_eq!(env.json(&["snapshot", "list"]).as_array().unwrap().len(), 2);
    assert!(env.ok(&["snapshot", "prune", "--dry-run"]).contains("nothing to prune"));
    env.ok(&["snapshot", "verify", "--read-data"]);
    env.ok(&["snapshot", "restore", "latest", "--target", "out"]);
    assert_eq!(std::fs::read(env.path("out/f")).unwrap(), noise(200_000, 3));
}

#[test]
fn copy_between_repositories() {
    let env = Env::new();
    env.write("data/f", &noise(300_000, 9));
    env.ok(&["snapshot", "create", "data", "--name", "push-me"]);
    env.run_env(&["repo", "init"], &[("ZENITH_REPO", env.path("remote"))]);
    let out = env.ok(&[
        "snapshot",
        "copy",
        "push-me",
        "--to",
        env.path("remote").to_str().unwrap(),
    ]);
    assert!(out.contains("copied snapshot"), "{out}");
    let restored = env.run_env(
        &["snapshot", "restore", "push-me", "--target", "from-remote"],
        &[("ZENITH_REPO", env.path("remote"))],
    );
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert_eq!(contents(&env.path("from-remote")), contents(&env.path("data")));
}

#[test]
fn restore_include_must_name_paths_in_the_snapshot() {
    let env = Env::new();
    env.write("data/keep.txt", b"1");
    env.ok(&["snapshot", "create", "data"]);
    let err = env.fails(
        &[
            "snapshot",
            "restore",
            "latest",
            "--include",
            "keep.txt",
            "--include",
            "nope",
        ],
        2,
    );
    assert!(err.contains("nope") && err.contains("not found in snapshot"), "{err}");
    // Nothing happened: no pre-restore snapshot, the data is untouched.
    assert_eq!(env.json(&["snapshot", "list"]).as_array().unwrap().len(), 1);
    env.write("data/keep.txt", b"2");
    env.ok(&["snapshot", "restore", "latest", "--include", "keep.txt"]);
    assert_eq!(std::fs::read(env.path("data/keep.txt")).unwrap(), b"1");
}

#[test]
fn empty_variables_count_as_unset() {
    let env = Env::new();
    let out = env
        .cmd()
        .args(["-r", env.repo().to_str().unwrap(), "snapshot", "list"])
        .env("ZENITH_REPO", "")
        .env("ZENITH_PASSWORD_FILE", "")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
