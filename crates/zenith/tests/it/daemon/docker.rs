//! The Docker runtime through the real daemon, router and engine: rolling, canary and
//! blue-green updates under load lose no request, a daemon killed with -9 takes its containers back without
//! restarting them (and leaves containers it does not own alone), and a container gets its
//! env, secrets, volumes, state directory, limits and the image's HEALTHCHECK.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use super::{Daemon, free_port, get, wait_for};
use crate::docker_image::{demo_image, derived_image, docker};

/// Removes every container of `app` when dropped, whatever the test did.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let ids = containers(&self.0);
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            docker(&args);
        }
    }
}

/// Removes one container when dropped.
struct Remove(String);

impl Drop for Remove {
    fn drop(&mut self) {
        docker(&["rm", "-f", &self.0]);
    }
}

/// Ids of the containers (running or not) labelled as replicas of `app`.
fn containers(app: &str) -> Vec<String> {
    let filter = format!("label=zenith.app={app}");
    let out = docker(&["ps", "-aq", "--no-trunc", "--filter", &filter]);
    let mut ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    ids.sort();
    ids
}

fn inspect(container: &str, format: &str) -> String {
    let out = docker(&["inspect", "-f", format, container]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn docker_spec(app: &str, image: &str, port: u16, version: &str, update: &str, extra: &str) -> String {
    format!(
        r#"[app]
name = "{app}"

[services.web]
runtime = "docker"
image = "{image}"
replicas = 2
port = {port}
env = {{ DEMO_VERSION = "{version}" }}
stop_grace = "5s"
drain_timeout = "5s"
{extra}

[services.web.health]
http = "/health"
interval = "200ms"
timeout = "1s"
retries = 2

[services.web.update]
{update}
"#
    )
}

const ROLLING: &str = "strategy = \"rolling\"\nmax_surge = 1\nmax_unavailable = 0\nprogress_deadline = \"60s\"";

const BLUE_GREEN: &str = r#"strategy = "blue-green"
scale_down_delay = "1s"
interval = "500ms"
min_requests = 20
progress_deadline = "60s"
"#;

const CANARY: &str = r#"strategy = "canary"
steps = [25, 50, 100]
interval = "800ms"
min_requests = 20
max_error_rate = 5
progress_deadline = "60s"
"#;

/// Four threads requesting `/` until `stop`; returns (requests, failures).
fn load(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(usize, Vec<String>)> {
    std::thread::spawn(move || {
        let total = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let (stop, total) = (stop.clone(), total.clone());
                std::thread::spawn(move || {
                    let mut failures = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        total.fetch_add(1, Ordering::Relaxed);
                        match get(port, "/") {
                            Ok((200, _)) => {}
                            Ok((code, body)) => failures.push(format!("{code} {}", body.trim())),
                            Err(e) => failures.push(e),
                        }
                        std::thread::sleep(Duration::from_millis(3));
                    }
                    failures
                })
            })
            .collect();
        let failures = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
        (total.load(Ordering::Relaxed), failures)
    })
}

fn deploy(d: &Daemon, name: &str, body: &str) -> String {
    let spec = d.spec(name, body);
    let run = d.run(&["deploy", "-f", spec.to_str().unwrap()]);
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "{out}\n--- daemon log ---\n{}", d.log());
    out
}

#[test]
fn rolling_canary_and_blue_green_updates_of_containers_lose_no_request() {
    let Some(image) = demo_image() else { return };
    let d = Daemon::start();
    let port = free_port();
    let app = format!("dk{port}");
    let _cleanup = Cleanup(app.clone());
    deploy(&d, "v1.toml", &docker_spec(&app, &image, port, "v1", ROLLING, ""));
    assert_eq!(get(port, "/").unwrap().1, "hello from v1\n");
    let v1 = containers(&app);
    assert_eq!(v1.len(), 2);
    assert_eq!(inspect(&v1[0], "{{index .Config.Labels \"zenith.service\"}}"), "web");
    assert_eq!(inspect(&v1[0], "{{.HostConfig.RestartPolicy.Name}}"), "no");

    let stop = Arc::new(AtomicBool::new(false));
    let loader = load(port, stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    let out = deploy(&d, "v2.toml", &docker_spec(&app, &image, port, "v2", ROLLING, ""));
    assert!(out.contains("r2 complete"), "{out}");
    let out = deploy(&d, "v3.toml", &docker_spec(&app, &image, port, "v3", CANARY, ""));
    assert!(out.contains("r3 complete"), "{out}");
    assert!(out.contains("r3 gets 50%"), "{out}");
    let out = deploy(&d, "v4.toml", &docker_spec(&app, &image, port, "v4", BLUE_GREEN, ""));
    assert!(out.contains("r4 complete"), "{out}");
    stop.store(true, Ordering::Relaxed);
    let (total, failures) = loader.join().unwrap();
    assert!(total > 100, "only {total} requests");
    assert!(
        failures.is_empty(),
        "{} of {total} failed: {failures:?}",
        failures.len()
    );
    assert_eq!(get(port, "/").unwrap().1, "hello from v4\n");
    wait_for(Duration::from_secs(20), "old containers to be removed", || {
        containers(&app).len() == 2
    });

    // Scaled to zero, every container is stopped and removed.
    let zero = docker_spec(&app, &image, port, "v4", ROLLING, "").replace("replicas = 2", "replicas = 0");
    deploy(&d, "v5.toml", &zero);
    wait_for(Duration::from_secs(30), "the app's containers to be removed", || {
        containers(&app).is_empty()
    });
}

#[test]
fn kill_9_of_the_daemon_readopts_containers_without_restarting_them() {
    let Some(image) = demo_image() else { return };
    let d = Daemon::start();
    let port = free_port();
    let app = format!("dk{port}");
    let _cleanup = Cleanup(app.clone());
    // A container zenith does not own, with a zenith-looking name but no zenith label.
    let foreign = format!("zenith-foreign-{port}");
    let _foreign = Remove(foreign.clone());
    docker(&["run", "-d", "--name", &foreign, "-e", "PORT=1", &image]);

    // Health by a command run in the container (docker exec).
    let exec = |v: &str| {
        docker_spec(&app, &image, port, v, ROLLING, "")
            .replace("http = \"/health\"", "exec = [\"/zenith\", \"--version\"]")
    };
    deploy(&d, "v1.toml", &exec("v1"));
    let before = containers(&app);
    let started: Vec<String> = before.iter().map(|c| inspect(c, "{{.State.StartedAt}}")).collect();

    let d = d.crash_and_restart();
    wait_for(Duration::from_secs(30), "the app to be back", || {
        d.status(&app)["services"][0]["ready_replicas"] == 2
    });
    assert_eq!(containers(&app), before, "containers were replaced instead of adopted");
    let after: Vec<String> = before.iter().map(|c| inspect(c, "{{.State.StartedAt}}")).collect();
    assert_eq!(after, started, "containers were restarted");
    assert_eq!(get(port, "/").unwrap().1, "hello from v1\n");

    // The adopted containers are fully managed again: an update replaces them.
    deploy(&d, "v2.toml", &exec("v2"));
    assert_eq!(get(port, "/").unwrap().1, "hello from v2\n");
    wait_for(Duration::from_secs(20), "the adopted containers to be removed", || {
        let now = containers(&app);
        now.len() == 2 && before.iter().all(|c| !now.contains(c))
    });
    assert_eq!(
        inspect(&foreign, "{{.State.Running}}"),
        "true",
        "a foreign container was touched"
    );
}

#[test]
fn a_container_gets_its_secrets_volumes_state_directory_limits_and_image_healthcheck() {
    let Some(base) = demo_image() else { return };
    let port = free_port();
    let volume = format!("zenith-test-{port}");
    let tag = format!("zenith-demo-health:{port}");
    // Dropped last, after the daemon and its containers.
    let _volume = RemoveVolume(volume.clone());
    let _image = RemoveImage(tag.clone());
    let d = Daemon::start();
    let app = format!("dk{port}");
    let _cleanup = Cleanup(app.clone());
    let healthy = derived_image(
        &base,
        &tag,
        "HEALTHCHECK --interval=1s --timeout=2s --retries=1 CMD [\"/zenith\", \"--version\"]",
    );
    std::fs::write(d.path("token"), "s3cr3t").unwrap();
    std::fs::create_dir_all(d.path("state")).unwrap();
    let extra = format!(
        r#"secrets = {{ api_token = "./token" }}
state_dirs = ["./state"]
volumes = ["./state:/var/lib/demo", "{volume}:/cache"]
container_port = 8080
resources = {{ cpus = 0.5, memory = "64MiB" }}"#
    );
    let body = docker_spec(&app, &healthy, port, "v1", ROLLING, &extra).replace(
        "http = \"/health\"\ninterval = \"200ms\"",
        "image = true\ninterval = \"500ms\"",
    );
    deploy(&d, "v1.toml", &body);

    let c = &containers(&app)[0];
    assert_eq!(inspect(c, "{{.HostConfig.Memory}}"), (64 * 1024 * 1024).to_string());
    assert_eq!(inspect(c, "{{.HostConfig.NanoCpus}}"), "500000000");
    assert_eq!(inspect(c, "{{.State.Health.Status}}"), "healthy");
    let ports = inspect(c, "{{json .HostConfig.PortBindings}}");
    assert!(ports.contains("\"8080/tcp\"") && ports.contains("127.0.0.1"), "{ports}");
    let env = inspect(c, "{{json .Config.Env}}");
    assert!(env.contains("\"STATE_DIRECTORY=/var/lib/demo\""), "{env}");
    assert!(env.contains("\"PORT=8080\""), "{env}");
    assert!(env.contains("\"ZENITH_SECRETS_DIR=/run/secrets\""), "{env}");

    // Writes through the router land in the bind-mounted state directory on the host.
    let w = super::post(port, "/write/greeting", "hi there").unwrap();
    assert_eq!(w.0, 200, "{w:?}");
    assert_eq!(std::fs::read_to_string(d.path("state/greeting")).unwrap(), "hi there");
    assert_eq!(get(port, "/read/greeting").unwrap().1, "hi there");

    // The secret is a file under /run/secrets, never an env value.
    let secret = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("docker cp {c}:/run/secrets/api_token - | tar -xO"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&secret.stdout), "s3cr3t");
    assert!(!env.contains("s3cr3t"));
    let mounts = inspect(c, "{{json .Mounts}}");
    assert!(mounts.contains(&volume) && mounts.contains("/cache"), "{mounts}");

    // A SIGTERM to the daemon stops and removes its containers.
    let mut d = d;
    assert!(d.terminate().success());
    wait_for(Duration::from_secs(30), "the app's containers to be removed", || {
        containers(&app).is_empty()
    });
}

#[test]
fn a_missing_image_fails_the_deploy_with_nothing_started() {
    if demo_image().is_none() {
        return;
    }
    let d = Daemon::start();
    let port = free_port();
    let app = format!("dk{port}");
    let spec = d.spec(
        "v1.toml",
        &docker_spec(&app, "zenith-no-such-image:never", port, "v1", ROLLING, ""),
    );
    let out = d.run(&["deploy", "-f", spec.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        text.contains("zenith-no-such-image:never") && text.contains("not on this Docker engine"),
        "{text}"
    );
    assert!(containers(&app).is_empty());
}

#[test]
fn state_hooks_rollback_with_state_and_a_drill_work_on_a_mounted_state_directory() {
    let Some(image) = demo_image() else { return };
    let d = Daemon::start();
    let port = free_port();
    let app = format!("dk{port}");
    let _cleanup = Cleanup(app.clone());
    std::fs::create_dir_all(d.path("state")).unwrap();
    std::fs::write(d.path("state/page"), "first").unwrap();
    let extra = r#"state_dirs = ["./state"]
volumes = ["./state:/srv/state"]
state = { snapshot_before_deploy = true }"#;
    let spec = |version: &str| {
        docker_spec(&app, &image, port, version, ROLLING, extra).replace(
            &format!("DEMO_VERSION = \"{version}\""),
            &format!("DEMO_VERSION = \"{version}\", DEMO_REQUIRE_STATE = \"page\""),
        )
    };
    deploy(&d, "v1.toml", &spec("v1"));
    deploy(&d, "v2.toml", &spec("v2"));
    assert_eq!(super::post(port, "/write/page", "second").unwrap().0, 200);
    assert_eq!(std::fs::read_to_string(d.path("state/page")).unwrap(), "second");

    // The drill runs a container on the restored copy; the live state and containers stay.
    wait_for(Duration::from_secs(20), "r1's containers to be removed", || {
        containers(&app).len() == 2
    });
    let live = containers(&app);
    let out = d.ok(&["recover", &app, "--drill", "--output-format", "json"]);
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["drill"]["ok"], true, "{out}");
    assert_eq!(std::fs::read_to_string(d.path("state/page")).unwrap(), "second");
    assert_eq!(
        containers(&app),
        live,
        "the drill left a container or touched a live one"
    );

    // Code and data together: r1's container over the state r1 was deployed on.
    let out = d.ok(&["rollback", &app, "1", "--with-state"]);
    assert!(out.contains("restore"), "{out}");
    assert_eq!(get(port, "/").unwrap().1, "hello from v1\n");
    assert_eq!(get(port, "/read/page").unwrap().1, "first");
    assert_eq!(std::fs::read_to_string(d.path("state/page")).unwrap(), "first");
}

#[test]
fn a_crashing_container_is_replaced_and_its_output_reaches_zenith_logs() {
    let Some(image) = demo_image() else { return };
    let d = Daemon::start();
    let port = free_port();
    let app = format!("dk{port}");
    let _cleanup = Cleanup(app.clone());
    let body = docker_spec(&app, &image, port, "v1", ROLLING, "")
        .replace("replicas = 2", "replicas = 1")
        .replace(
            "DEMO_VERSION = \"v1\"",
            "DEMO_VERSION = \"v1\", DEMO_CRASH_AFTER_MS = \"1500\"",
        )
        + "\n[services.web.restart]\ndelay = \"100ms\"\n";
    deploy(&d, "v1.toml", &body);
    wait_for(Duration::from_secs(30), "a restart after the crash", || {
        d.status(&app)["services"][0]["replicas"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["restarts"].as_u64().unwrap_or(0) >= 1))
    });
    let logs = d.ok(&["logs", &app, "-n", "50"]);
    assert!(logs.contains("demo-app v1 listening on 0.0.0.0"), "{logs}");
}

#[test]
fn a_named_volume_can_hold_state_that_rolls_back_with_the_code() {
    let Some(image) = demo_image() else { return };
    let port = free_port();
    let volume = format!("zenith-state-{port}");
    // Dropped last: after the daemon has stopped the containers that use it.
    let _volume = RemoveVolume(volume.clone());
    let d = Daemon::start();
    let app = format!("dk{port}");
    let _cleanup = Cleanup(app.clone());
    let extra = format!(
        r#"volumes = ["{volume}:/srv/state"]
state_volumes = ["{volume}"]
state = {{ snapshot_before_deploy = true }}"#
    );
    let spec = |v: &str| docker_spec(&app, &image, port, v, ROLLING, &extra);
    deploy(&d, "v1.toml", &spec("v1"));
    assert_eq!(super::post(port, "/write/page", "first").unwrap().0, 200);
    deploy(&d, "v2.toml", &spec("v2")); // its set holds "first"
    assert_eq!(super::post(port, "/write/page", "second").unwrap().0, 200);
    deploy(&d, "v3.toml", &spec("v3"));
    // The volume's directory, found at deploy, makes no difference to an unchanged spec.
    let again = deploy(&d, "v3.toml", &spec("v3"));
    assert!(again.contains("unchanged"), "{again}");
    wait_for(Duration::from_secs(20), "r2's containers to be removed", || {
        containers(&app).len() == 2
    });
    let c = &containers(&app)[0];
    let mounts = inspect(c, "{{json .Mounts}}");
    assert!(
        mounts.contains("\"Type\":\"volume\"") && mounts.contains(&volume),
        "{mounts}"
    );
    assert!(inspect(c, "{{json .Config.Env}}").contains("STATE_DIRECTORY=/srv/state"));

    let out = d.ok(&["recover", &app, "--drill", "--output-format", "json"]);
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["drill"]["ok"], true, "{out}");
    assert_eq!(
        get(port, "/read/page").unwrap().1,
        "second",
        "the drill touched the volume"
    );

    d.ok(&["rollback", &app, "2", "--with-state"]);
    assert_eq!(get(port, "/").unwrap().1, "hello from v2\n");
    assert_eq!(get(port, "/read/page").unwrap().1, "first");
}

/// Removes one image when dropped.
struct RemoveImage(String);

impl Drop for RemoveImage {
    fn drop(&mut self) {
        docker(&["rmi", "-f", &self.0]);
    }
}

/// Removes one volume when dropped (after the containers using it).
struct RemoveVolume(String);

impl Drop for RemoveVolume {
    fn drop(&mut self) {
        docker(&["volume", "rm", "-f", &self.0]);
    }
}
