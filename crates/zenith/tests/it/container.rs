//! Container snapshots against the real Docker engine: snapshot a container of the demo image
//! with files of its own and a volume, remove it, restore it under a new name, and compare;
//! plus the refusals, which must leave nothing behind. Each test skips (loudly) without an
//! engine.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::docker_image::{demo_image, docker};
use crate::util::{Env, contents, noise};

/// Docker objects a test made, removed when it ends, passed or failed.
struct Cleanup {
    containers: Vec<String>,
    volumes: Vec<String>,
    images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            docker(&["rm", "-f", "-v", c]);
        }
        for v in &self.volumes {
            docker(&["volume", "rm", "-f", v]);
        }
        for i in &self.images {
            docker(&["rmi", "-f", i]);
        }
    }
}

/// A name unique to this test process (nextest runs each test in its own).
fn unique(what: &str) -> String {
    format!("zc-{}-{what}", std::process::id())
}

fn ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn exists(kind: &str, name: &str) -> bool {
    docker(&[kind, "inspect", name]).status.success()
}

fn inspect(container: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&ok(&["inspect", container])).unwrap();
    v[0].clone()
}

/// An HTTP request to the demo app through the container's published port (the test image
/// listens on every address), retried until it answers or 15 s pass.
fn http(container: &str, method: &str, path: &str, body: Option<&str>) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let published = ok(&["port", container, "8080/tcp"]);
        let port: Option<u16> = published
            .lines()
            .find_map(|l| l.strip_prefix("127.0.0.1:"))
            .and_then(|p| p.trim().parse().ok());
        let answer = match (port, method) {
            (Some(port), "POST") => crate::daemon::post(port, path, body.unwrap_or("")),
            (Some(port), _) => crate::daemon::get(port, path),
            (None, _) => Err(format!("no published port in {published:?}")),
        };
        match answer {
            Ok((200, text)) => return text,
            other => assert!(
                Instant::now() < deadline,
                "{method} {path} on {container} never answered: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts a demo-app container with a volume at /data and files of its own under /tmp and
/// /etc; returns the local copy of those files.
fn start_demo(image: &str, name: &str, volume: &str, extra: &[&str], payload_mb: usize) -> tempfile::TempDir {
    let mut args = vec![
        "run",
        "-d",
        "--name",
        name,
        "-e",
        "PORT=8080",
        "-e",
        "DEMO_VERSION=v-container",
        "-e",
        "STATE_DIRECTORY=/data",
        "-p",
        "127.0.0.1::8080",
        "--label",
        "zenith.test=container",
        "--restart",
        "unless-stopped",
    ];
    let mount = format!("{volume}:/data");
    args.extend(["-v", &mount]);
    args.extend(extra);
    args.push(image);
    ok(&args);
    assert_eq!(http(name, "GET", "/", None), "hello from v-container\n");
    assert!(http(name, "POST", "/write/greeting", Some("hello volume")).starts_with("stored greeting"));

    let local = tempfile::tempdir().unwrap();
    let p = local.path().join("payload");
    std::fs::create_dir_all(p.join("nested/deeper")).unwrap();
    std::fs::write(p.join("a.txt"), "some text\n".repeat(1000)).unwrap();
    std::fs::write(p.join("nested/deeper/noise.bin"), noise(payload_mb << 20, 7)).unwrap();
    std::fs::write(p.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(p.join("run.sh"), std::fs::Permissions::from_mode(0o750)).unwrap();
    std::os::unix::fs::symlink("a.txt", p.join("link")).unwrap();
    std::fs::write(local.path().join("app.conf"), "key = value\n").unwrap();
    ok(&["cp", p.to_str().unwrap(), &format!("{name}:/tmp/")]);
    ok(&[
        "cp",
        local.path().join("app.conf").to_str().unwrap(),
        &format!("{name}:/etc/app.conf"),
    ]);
    local
}

/// Copies `path` out of a container into a new temporary directory.
fn copy_out(container: &str, path: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    ok(&["cp", &format!("{container}:{path}"), dir.path().to_str().unwrap()]);
    dir
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn container_snapshot_restores_files_config_and_volume() {
    let Some(image) = demo_image() else { return };
    let env = Env::new();
    let (name, volume, copy) = (unique("orig"), unique("data"), unique("copy"));
    let _cleanup = Cleanup {
        containers: vec![name.clone(), copy.clone()],
        volumes: vec![volume.clone()],
        images: Vec::new(),
    };
    let local = start_demo(&image, &name, &volume, &[], 1);
    let before = inspect(&name);

    let snap = env.json(&["snapshot", "container", &name, "--with-volumes", "--tag", "first"]);
    let id = snap["id"].as_str().unwrap().to_string();
    assert_eq!(snap["container"], name.as_str());
    assert_eq!(snap["running"], true);
    assert_eq!(snap["volumes"], serde_json::json!([volume]));
    let files: Vec<&str> = snap["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        files.contains(&"/tmp/payload") && files.contains(&"/etc/app.conf"),
        "{files:?}"
    );
    assert!(
        !files.iter().any(|f| f.starts_with("/data")),
        "the volume is not part of the file changes: {files:?}"
    );
    let shown = env.ok(&["snapshot", "show", &id]);
    assert!(shown.contains("container"), "{shown}");

    let orig_tmp = copy_out(&name, "/tmp/payload");
    let orig_data = copy_out(&name, "/data");
    ok(&["rm", "-f", &name]);
    ok(&["volume", "rm", &volume]);

    let out = env.ok(&["snapshot", "restore", &id, "--container", &copy]);
    assert!(out.contains(&format!("as container {copy}")), "{out}");
    let after = inspect(&copy);
    assert_eq!(after["State"]["Running"], true, "the original was running");
    for field in [
        "Env",
        "Cmd",
        "Entrypoint",
        "Labels",
        "ExposedPorts",
        "WorkingDir",
        "User",
    ] {
        assert_eq!(after["Config"][field], before["Config"][field], "Config.{field}");
    }
    for field in ["PortBindings", "RestartPolicy", "NetworkMode"] {
        assert_eq!(
            after["HostConfig"][field], before["HostConfig"][field],
            "HostConfig.{field}"
        );
    }
    assert_eq!(after["Mounts"][0]["Name"], volume.as_str());
    assert_eq!(after["Mounts"][0]["Destination"], "/data");

    // Files byte for byte, with their modes and links, and the volume's data.
    let new_tmp = copy_out(&copy, "/tmp/payload");
    assert_eq!(contents(new_tmp.path()), contents(orig_tmp.path()));
    assert_eq!(
        std::fs::read(new_tmp.path().join("payload/nested/deeper/noise.bin")).unwrap(),
        std::fs::read(local.path().join("payload/nested/deeper/noise.bin")).unwrap()
    );
    assert_eq!(mode(&new_tmp.path().join("payload/run.sh")), 0o750);
    assert_eq!(
        std::fs::read_link(new_tmp.path().join("payload/link")).unwrap(),
        Path::new("a.txt")
    );
    assert_eq!(
        std::fs::read(copy_out(&copy, "/etc/app.conf").path().join("app.conf")).unwrap(),
        b"key = value\n"
    );
    assert_eq!(contents(copy_out(&copy, "/data").path()), contents(orig_data.path()));

    // And it serves what the original served.
    assert_eq!(http(&copy, "GET", "/", None), "hello from v-container\n");
    assert_eq!(http(&copy, "GET", "/read/greeting", None), "hello volume");
}

#[test]
fn container_second_snapshot_adds_little_and_verifies() {
    let Some(image) = demo_image() else { return };
    let env = Env::new();
    let (name, volume) = (unique("orig"), unique("data"));
    let _cleanup = Cleanup {
        containers: vec![name.clone()],
        volumes: vec![volume.clone()],
        images: Vec::new(),
    };
    start_demo(&image, &name, &volume, &[], 8);
    let first = env.json(&["snapshot", "container", &name, "--with-volumes"]);
    http(&name, "POST", "/write/more", Some("a small change"));
    let second = env.json(&["snapshot", "container", &name, "--with-volumes"]);
    let added = |s: &serde_json::Value| s["summary"]["bytes_added"].as_u64().unwrap();
    assert!(added(&first) > 8 << 20, "first: {first}");
    assert!(
        added(&second) * 20 < added(&first),
        "the second snapshot should add little: {} vs {}",
        added(&second),
        added(&first)
    );
    let listed = env.json(&["snapshot", "list", "--type", "container"]);
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    let verified = env.ok(&["snapshot", "verify", "--read-data"]);
    assert!(verified.contains("checked 2 snapshots"), "{verified}");
    assert!(verified.contains("no errors were found"), "{verified}");
}

#[test]
fn container_unknown_is_refused() {
    let Some(_) = demo_image() else { return };
    let env = Env::new();
    let err = env.fails(&["snapshot", "container", &unique("missing")], 2);
    assert!(
        err.contains("no container named") && err.contains(&unique("missing")),
        "{err}"
    );
}

#[test]
fn container_engine_unreachable_is_a_clear_error() {
    let env = Env::new();
    let out = env.run_env(
        &["snapshot", "container", "anything"],
        &[("DOCKER_HOST", "unix:///nonexistent")],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach the Docker engine at unix:///nonexistent"),
        "{err}"
    );
}

/// Names of this test's containers and volumes on the engine, to show nothing was added.
fn ours() -> (String, String) {
    let prefix = format!("zc-{}-", std::process::id());
    (
        ok(&[
            "ps",
            "-a",
            "--filter",
            &format!("name={prefix}"),
            "--format",
            "{{.Names}}",
        ]),
        ok(&[
            "volume",
            "ls",
            "--filter",
            &format!("name={prefix}"),
            "--format",
            "{{.Name}}",
        ]),
    )
}

#[test]
fn container_restore_refuses_taken_names_and_volumes_and_creates_nothing() {
    let Some(image) = demo_image() else { return };
    let env = Env::new();
    let (name, volume, taken, copy) = (unique("orig"), unique("data"), unique("taken"), unique("copy"));
    let prefixed = format!("p-{volume}");
    let _cleanup = Cleanup {
        containers: vec![name.clone(), taken.clone(), copy.clone()],
        volumes: vec![volume.clone(), prefixed.clone()],
        images: Vec::new(),
    };
    start_demo(&image, &name, &volume, &[], 1);
    let id = env.json(&["snapshot", "container", &name, "--with-volumes"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&["create", "--name", &taken, &image]);

    // The volume still exists: refused, naming it.
    let err = env.fails(&["snapshot", "restore", &id, "--container", &copy], 2);
    assert!(
        err.contains(&format!("volume {volume} already exists")) && err.contains("--volume-prefix"),
        "{err}"
    );
    assert!(!exists("container", &copy));

    // A taken name, with the volume gone: refused, and no volume was made.
    ok(&["rm", "-f", &name]);
    ok(&["volume", "rm", &volume]);
    let before = ours();
    let err = env.fails(&["snapshot", "restore", &id, "--container", &taken], 2);
    assert!(
        err.contains(&format!("a container named {taken} already exists")),
        "{err}"
    );
    assert_eq!(ours(), before, "nothing created");

    // --volume-prefix makes new volumes beside existing ones; --no-start leaves it stopped.
    ok(&["volume", "create", &volume]);
    let out = env.ok(&[
        "snapshot",
        "restore",
        &id,
        "--container",
        &copy,
        "--volume-prefix",
        "p-",
        "--no-start",
    ]);
    assert!(out.contains("not started"), "{out}");
    let copied = inspect(&copy);
    assert_eq!(copied["State"]["Running"], false);
    assert_eq!(copied["Mounts"][0]["Name"], prefixed.as_str());
    let data = copy_out(&copy, "/data");
    assert_eq!(
        std::fs::read(data.path().join("data/greeting")).unwrap(),
        b"hello volume"
    );
}

#[test]
fn container_restore_without_its_image_creates_nothing() {
    let Some(image) = demo_image() else { return };
    let env = Env::new();
    let (base, name, img, copy) = (unique("base"), unique("orig"), unique("img") + ":1", unique("copy"));
    let _cleanup = Cleanup {
        containers: vec![base.clone(), name.clone(), copy.clone()],
        images: vec![img.clone()],
        volumes: Vec::new(),
    };
    // An image of its own (a commit makes a new id), removed after the snapshot.
    ok(&["create", "--name", &base, &image]);
    ok(&["commit", &base, &img]);
    ok(&["create", "--name", &name, "-e", "PORT=8080", &img]);
    let id = env.json(&["snapshot", "container", &name])["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&["rm", "-f", &name, &base]);
    ok(&["rmi", &img]);
    let before = ours();
    let err = env.fails(&["snapshot", "restore", &id, "--container", &copy], 2);
    assert!(
        err.contains(&format!("image {img} is not on this engine; load or build it")),
        "{err}"
    );
    assert_eq!(ours(), before, "nothing created");
}

#[test]
fn container_restore_that_fails_to_start_removes_what_it_created() {
    let Some(image) = demo_image() else { return };
    let env = Env::new();
    let (name, volume, copy) = (unique("orig"), unique("data"), unique("copy"));
    let _cleanup = Cleanup {
        containers: vec![name.clone(), copy.clone()],
        volumes: vec![volume.clone()],
        images: Vec::new(),
    };
    // Published on a fixed port that something else holds by the time of the restore.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let publish = format!("127.0.0.1:{port}:8080");
    start_demo(&image, &name, &volume, &["-p", &publish], 1);
    let id = env.json(&["snapshot", "container", &name, "--with-volumes"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&["rm", "-f", &name]);
    ok(&["volume", "rm", &volume]);
    let _holder = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let before = ours();
    let err = env.fails(&["snapshot", "restore", &id, "--container", &copy], 1);
    assert!(err.contains(&format!("start container {copy}")), "{err}");
    assert_eq!(ours(), before, "the container and its volume were removed again");
}

#[test]
fn container_snapshot_of_a_file_directory_is_refused_as_container_restore() {
    let Some(_) = demo_image() else { return };
    let env = Env::new();
    env.write("dir/f", b"x");
    env.ok(&["snapshot", "create", "dir"]);
    let err = env.fails(&["snapshot", "restore", "latest", "--container", &unique("x")], 2);
    assert!(err.contains("is not a container snapshot"), "{err}");
}

#[test]
fn container_snapshot_travels_through_a_registry_and_restores_elsewhere() {
    let Some(image) = demo_image() else { return };
    let Some(reg) = crate::registry::Registry::start(Default::default()) else {
        return;
    };
    let env = Env::new();
    let (name, volume, copy) = (unique("orig"), unique("data"), unique("copy"));
    let _cleanup = Cleanup {
        containers: vec![name.clone(), copy.clone()],
        volumes: vec![volume.clone()],
        images: Vec::new(),
    };
    start_demo(&image, &name, &volume, &[], 1);
    let id = env.json(&["snapshot", "container", &name, "--with-volumes"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let reference = reg.reference("team/shop:before-upgrade");
    env.ok(&["snapshot", "push", &id, &reference]);

    // Gone here: the container, its volume and the snapshot (forgotten and pruned).
    docker(&["rm", "-f", "-v", &name]);
    docker(&["volume", "rm", "-f", &volume]);
    env.ok(&["snapshot", "forget", &id, "--prune"]);
    assert!(env.run(&["snapshot", "show", &id]).status.code() != Some(0));

    let pulled = env.json(&["snapshot", "pull", &reference]);
    assert_eq!(pulled["report"]["snapshot"], id.as_str(), "{pulled}");
    env.ok(&["snapshot", "verify", &id, "--read-data"]);
    env.ok(&["snapshot", "restore", &id, "--container", &copy, "--start"]);
    assert_eq!(http(&copy, "GET", "/read/greeting", None), "hello volume");
    assert_eq!(http(&copy, "GET", "/", None), "hello from v-container\n");
}
