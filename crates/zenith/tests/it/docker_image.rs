//! A container image of the demo app, built here without any registry: the `zenith` binary
//! under test and the shared libraries it loads, in an otherwise empty file system, with
//! `zenith demo-app` as its entrypoint, listening on every address of the container
//! (`DEMO_BIND=0.0.0.0`). Tests that need the Docker engine call
//! [`demo_image`], which says loudly why it skips when there is no engine.

use std::path::Path;
use std::process::{Command, Stdio};

/// The Docker engine answers (`docker info`); prints why not otherwise.
pub fn docker_available() -> bool {
    let ok = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIP: no Docker engine answers `docker info` on this machine; this test needs one");
    }
    ok
}

/// The tag of the demo-app image for the current binary, built on first use. `None` (after a
/// loud SKIP line) when there is no engine.
pub fn demo_image() -> Option<String> {
    if !docker_available() {
        return None;
    }
    let bin = assert_cmd::cargo::cargo_bin!("zenith");
    let meta = std::fs::metadata(bin).unwrap();
    let stamp = format!("{}:{}:{:?}", bin.display(), meta.len(), meta.modified().unwrap());
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&stamp, &mut hasher);
    let tag = format!("zenith-demo-test:{:016x}", std::hash::Hasher::finish(&hasher));
    if docker(&["image", "inspect", &tag]).status.success() {
        return Some(tag);
    }
    // Tests run in parallel processes: one builds, the others wait for it (two imports under
    // one tag would leave the loser's image behind, untagged).
    let lock = std::fs::File::create(std::env::temp_dir().join("zenith-demo-image.lock")).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
    if docker(&["image", "inspect", &tag]).status.success() {
        return Some(tag);
    }
    let root = tempfile::tempdir().unwrap();
    copy_into(root.path(), bin, Path::new("/zenith"));
    let ldd = Command::new("ldd").arg(bin).output().unwrap();
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
        let lib = line
            .split("=>")
            .last()
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("");
        if lib.starts_with('/') {
            let lib = Path::new(lib);
            copy_into(root.path(), lib, lib);
        }
    }
    for dir in ["tmp", "data", "etc"] {
        std::fs::create_dir_all(root.path().join(dir)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.path().join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let mut tar = Command::new("tar")
        .args(["-C"])
        .arg(root.path())
        .args(["-cf", "-", "."])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let import = Command::new("docker")
        .args([
            "import",
            "--change",
            r#"ENTRYPOINT ["/zenith", "demo-app"]"#,
            "--change",
            "ENV DEMO_BIND=0.0.0.0",
            "-",
            &tag,
        ])
        .stdin(tar.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(tar.wait().unwrap().success(), "tar of the image's file system failed");
    assert!(
        import.status.success(),
        "docker import failed: {}",
        String::from_utf8_lossy(&import.stderr)
    );
    Some(tag)
}

/// Runs the docker CLI (test setup and checks only; zenith itself speaks to the engine's API).
pub fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker").args(args).output().unwrap()
}

fn copy_into(root: &Path, from: &Path, at: &Path) {
    let dest = root.join(at.strip_prefix("/").unwrap());
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    // Follow symlinks: the image holds the real file under the name the loader asks for.
    std::fs::copy(from, &dest).unwrap();
}

/// An image built `FROM` `base` with extra Dockerfile lines (e.g. a HEALTHCHECK), tagged
/// `tag`; built locally by the engine's builder, nothing pulled.
pub fn derived_image(base: &str, tag: &str, lines: &str) -> String {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), format!("FROM {base}\n{lines}\n")).unwrap();
    let out = Command::new("docker")
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "-t", tag])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    tag.to_string()
}
