//! `snapshot push` and `snapshot pull` against a real registry: Debian's `docker-registry`
//! (the CNCF distribution registry), started per test on a free loopback port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A registry process serving from a temporary directory; killed when dropped.
pub(crate) struct Registry {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
}

#[derive(Default)]
pub(crate) struct Options {
    /// `htpasswd` user and password.
    user: Option<(&'static str, &'static str)>,
    readonly: bool,
}

impl Registry {
    /// Start a registry, or print why not and return `None` (the test then skips).
    pub(crate) fn start(opts: Options) -> Option<Registry> {
        if !Path::new(REGISTRY_BIN).exists() {
            eprintln!("SKIP: {REGISTRY_BIN} is missing (apt-get install docker-registry); registry test not run");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  maintenance:\n    uploadpurging:\n      enabled: false\n    readonly:\n      enabled: {}\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display(),
            opts.readonly
        );
        if let Some((user, pass)) = opts.user {
            let Ok(out) = Command::new("htpasswd").args(["-Bbn", user, pass]).output() else {
                eprintln!("SKIP: htpasswd is missing (apt-get install apache2-utils); registry test not run");
                return None;
            };
            assert!(out.status.success());
            std::fs::write(dir.path().join("htpasswd"), out.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: zenith-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("registry.log")).unwrap())
            .spawn()
            .unwrap();
        let reg = Registry { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match ureq::get(format!("http://{}/v2/", reg.addr)).call() {
                Ok(_) | Err(ureq::Error::StatusCode(_)) => return Some(reg),
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => panic!(
                    "the registry did not come up on {}: {e}\n{}",
                    reg.addr,
                    std::fs::read_to_string(reg.dir.path().join("registry.log")).unwrap_or_default()
                ),
            }
        }
    }

    pub(crate) fn reference(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.addr)
    }

    /// The file the registry keeps a blob's content in.
    fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run in another repository (`ZENITH_REPO=env/<repo>`) with extra variables.
fn run_in(env: &Env, repo: &str, args: &[&str], vars: &[(&str, &str)]) -> std::process::Output {
    let mut c = env.cmd();
    c.args(args).env("ZENITH_REPO", env.path(repo));
    for (k, v) in vars {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok_in(env: &Env, repo: &str, args: &[&str]) -> String {
    let out = run_in(env, repo, args, &[]);
    assert!(
        out.status.success(),
        "zenith {args:?} in {repo} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn registry_push_pull_round_trip_and_incremental_push() {
    let Some(reg) = Registry::start(Options::default()) else {
        return;
    };
    let env = Env::new();
    env.write("data/a.txt", b"alpha\n");
    env.write("data/sub/b.bin", &noise(400_000, 1));
    let first = env.json(&["snapshot", "create", "data", "--type", "data", "--tag", "nightly"]);
    let id = first["id"].as_str().unwrap().to_string();
    let tree1 = contents(&env.path("data"));

    let v1 = reg.reference("team/state:v1");
    let push1 = env.json(&["snapshot", "push", &id[..8], &v1])["report"].clone();
    assert_eq!(push1["snapshot"], id);
    assert_eq!(push1["blobs_skipped"], 0, "{push1}");
    // The empty config, the repository config, a key, an index, the snapshot and its pack(s).
    assert!(push1["blobs_uploaded"].as_u64().unwrap() >= 6, "{push1}");
    assert!(push1["bytes_uploaded"].as_u64().unwrap() > 400_000, "{push1}");
    assert!(push1["manifest_digest"].as_str().unwrap().starts_with("sha256:"));

    // A later snapshot shares the old pack: only the new files travel.
    env.write("data/c.bin", &noise(100_000, 2));
    let second = env.json(&["snapshot", "create", "data"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let push2 = env.json(&["snapshot", "push", "latest", &reg.reference("team/state:v2")])["report"].clone();
    assert_eq!(push2["snapshot"], second);
    let (uploaded, skipped) = (
        push2["blobs_uploaded"].as_u64().unwrap(),
        push2["blobs_skipped"].as_u64().unwrap(),
    );
    assert_eq!(uploaded + skipped, push2["layers"].as_u64().unwrap() + 1, "{push2}");
    assert!(
        skipped >= 4,
        "empty config, config, key and the old pack(s) are there: {push2}"
    );
    assert!(
        push2["bytes_uploaded"].as_u64().unwrap() < 150_000,
        "only the new data travels: {push2}"
    );
    let text = env.ok(&["snapshot", "push", "latest", &reg.reference("team/state:v2")]);
    assert!(text.contains(&format!("pushed snapshot {}", &second[..8])), "{text}");
    assert!(
        text.contains("1 blobs uploaded ("),
        "a re-push sends only a fresh index: {text}"
    );
    assert!(
        text.contains(&format!("{} already in the registry", push2["layers"])),
        "{text}"
    );
    let again = env.json(&["snapshot", "push", &id, &reg.reference("team/state:v1")])["report"].clone();
    assert!(
        again["bytes_uploaded"].as_u64().unwrap() < 10_000,
        "re-push of v1 sends no pack: {again}"
    );

    // Pull into a fresh repository with the same password.
    env.run_env(&["repo", "init"], &[("ZENITH_REPO", env.path("other"))]);
    let pulled = run_in(
        &env,
        "other",
        &["snapshot", "pull", &v1, "--output-format", "json"],
        &[],
    );
    assert!(pulled.status.success(), "{}", stderr(&pulled));
    let report: serde_json::Value = serde_json::from_slice(&pulled.stdout).unwrap();
    assert_eq!(report["report"]["snapshot"], id);
    ok_in(&env, "other", &["snapshot", "verify", "--read-data"]);
    let show: serde_json::Value = serde_json::from_str(&ok_in(
        &env,
        "other",
        &["snapshot", "show", &id, "--output-format", "json"],
    ))
    .unwrap();
    assert_eq!(show["tags"], serde_json::json!(["nightly"]));
    ok_in(&env, "other", &["snapshot", "restore", &id, "--target", "out-other"]);
    assert_eq!(contents(&env.path("out-other")), tree1);

    // Forget and prune the original, then bring it back from the registry.
    env.ok(&["snapshot", "forget", &id]);
    env.ok(&["snapshot", "prune"]);
    let text = env.ok(&["snapshot", "pull", &v1]);
    assert!(text.contains(&format!("pulled snapshot {}", &id[..8])), "{text}");
    let text = env.ok(&["snapshot", "pull", &v1]);
    assert!(text.contains("already in the repository"), "{text}");
    env.ok(&["snapshot", "verify", "--read-data"]);
    env.ok(&["snapshot", "restore", &id, "--target", "out"]);
    assert_eq!(contents(&env.path("out")), tree1);

    // A blob damaged in the registry's storage is caught before anything is written.
    let manifest_digest = push1["manifest_digest"].as_str().unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reg.blob_path(manifest_digest)).unwrap()).unwrap();
    let pack = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["mediaType"] == "application/vnd.zenith.repo.pack.v1")
        .unwrap();
    let path = reg.blob_path(pack["digest"].as_str().unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    env.run_env(&["repo", "init"], &[("ZENITH_REPO", env.path("third"))]);
    let before = contents(&env.path("third"));
    let out = run_in(&env, "third", &["snapshot", "pull", &v1], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not match its digest"), "{}", stderr(&out));
    assert_eq!(contents(&env.path("third")), before, "a failed pull writes nothing");
}

#[test]
fn registry_with_htpasswd_needs_credentials() {
    let Some(reg) = Registry::start(Options {
        user: Some(("ops", "registry-pw")),
        ..Default::default()
    }) else {
        return;
    };
    let env = Env::new();
    env.write("data/f", b"hello\n");
    env.ok(&["snapshot", "create", "data"]);
    let target = reg.reference("private/state:v1");

    let out = env.run(&["snapshot", "push", "latest", &target]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("refused the credentials or asks for some") && err.contains("ZENITH_REGISTRY_USERNAME"),
        "{err}"
    );
    assert!(
        err.to_lowercase().contains("unauthorized"),
        "the registry's own words: {err}"
    );

    let wrong = env.run_env(
        &["snapshot", "push", "latest", &target],
        &[
            ("ZENITH_REGISTRY_USERNAME", "ops"),
            ("ZENITH_REGISTRY_PASSWORD", "not-it"),
        ],
    );
    assert_eq!(wrong.status.code(), Some(1));
    assert!(!stderr(&wrong).contains("not-it"), "the password is never shown");

    let creds = [
        ("ZENITH_REGISTRY_USERNAME", "ops"),
        ("ZENITH_REGISTRY_PASSWORD", "registry-pw"),
    ];
    let out = env.run_env(&["snapshot", "push", "latest", &target], &creds);
    assert!(out.status.success(), "{}", stderr(&out));

    // Docker's config.json works too.
    let auth = "b3BzOnJlZ2lzdHJ5LXB3"; // base64("ops:registry-pw")
    env.write(
        "docker/config.json",
        format!(r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#, reg.addr).as_bytes(),
    );
    env.run_env(&["repo", "init"], &[("ZENITH_REPO", env.path("other"))]);
    let docker_config = env.path("docker");
    let out = run_in(
        &env,
        "other",
        &["snapshot", "pull", &target],
        &[("DOCKER_CONFIG", docker_config.to_str().unwrap())],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn registry_errors_are_clear_and_change_nothing() {
    let Some(reg) = Registry::start(Options::default()) else {
        return;
    };
    let env = Env::new();
    env.write("data/f", &noise(50_000, 3));
    env.ok(&["snapshot", "create", "data"]);

    let err = env.fails(&["snapshot", "pull", &reg.reference("nothing/here:v1")], 2);
    assert!(err.contains("was not found") && err.contains("UNKNOWN"), "{err}");
    env.ok(&["snapshot", "push", "latest", &reg.reference("team/state:v1")]);
    let err = env.fails(&["snapshot", "pull", &reg.reference("team/state:nope")], 2);
    assert!(
        err.contains("team/state:nope was not found") && err.contains("MANIFEST_UNKNOWN"),
        "{err}"
    );

    let err = env.fails(&["snapshot", "push", "latest", "state:v1"], 2);
    assert!(err.contains("HOST[:PORT]/REPOSITORY[:TAG]"), "{err}");
    let err = env.fails(&["snapshot", "push", "deadbeef", &reg.reference("team/state:v1")], 2);
    assert!(err.contains("no snapshot matches"), "{err}");

    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = env.fails(
        &["snapshot", "push", "latest", &format!("127.0.0.1:{port}/team/state")],
        1,
    );
    assert!(
        err.contains(&format!("cannot reach the registry 127.0.0.1:{port}")),
        "{err}"
    );

    // A pull with another password is refused before the local repository is touched.
    env.run_env(
        &["repo", "init"],
        &[
            ("ZENITH_REPO", env.path("other").to_str().unwrap()),
            ("ZENITH_PASSWORD", "different"),
        ],
    );
    let before = contents(&env.path("other"));
    let out = run_in(
        &env,
        "other",
        &["snapshot", "pull", &reg.reference("team/state:v1")],
        &[("ZENITH_PASSWORD", "different")],
    );
    assert_eq!(out.status.code(), Some(11), "{}", stderr(&out));
    assert!(stderr(&out).contains("ZENITH_OTHER_PASSWORD"), "{}", stderr(&out));
    assert_eq!(contents(&env.path("other")), before);
    let out = run_in(
        &env,
        "other",
        &["snapshot", "pull", &reg.reference("team/state:v1")],
        &[("ZENITH_PASSWORD", "different"), ("ZENITH_OTHER_PASSWORD", "secret")],
    );
    assert!(
        out.status.success(),
        "the artifact's own password opens it: {}",
        stderr(&out)
    );

    // An artifact of another kind is named as such.
    let base = format!("http://{}/v2/team/other", reg.addr);
    let upload = ureq::post(format!("{base}/blobs/uploads/")).send_empty().unwrap();
    let location = upload.headers()["location"].to_str().unwrap().to_string();
    let empty = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    let sep = if location.contains('?') { '&' } else { '?' };
    let put = if location.starts_with("http") {
        location.clone()
    } else {
        format!("http://{}{location}", reg.addr)
    };
    ureq::put(format!("{put}{sep}digest={empty}")).send("{}").unwrap();
    let foreign = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.sbom.v1",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": []
    });
    ureq::put(format!("{base}/manifests/sbom"))
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .send(foreign.to_string())
        .unwrap();
    let err = env.fails(&["snapshot", "pull", &reg.reference("team/other:sbom")], 2);
    assert!(
        err.contains("is not a zenith snapshot") && err.contains("vnd.example.sbom"),
        "{err}"
    );
}

#[test]
fn registry_read_only_refuses_the_push() {
    let Some(reg) = Registry::start(Options {
        readonly: true,
        ..Default::default()
    }) else {
        return;
    };
    let env = Env::new();
    env.write("data/f", b"x\n");
    env.ok(&["snapshot", "create", "data"]);
    let before = contents(&env.repo());
    let err = env.fails(&["snapshot", "push", "latest", &reg.reference("team/state:v1")], 1);
    assert!(
        err.contains("refused to store blobs") && err.contains("HTTP 405"),
        "{err}"
    );
    assert!(
        err.contains("UNSUPPORTED") || err.contains("read-only"),
        "the registry's words: {err}"
    );
    assert_eq!(contents(&env.repo()), before, "the local repository is unchanged");
    let err = env.fails(&["snapshot", "pull", &reg.reference("team/state:v1")], 2);
    assert!(err.contains("was not found"), "no tag was left behind: {err}");
}
