//! `zenith spec check` and `zenith spec import-compose`, run as a user would.

use crate::util::*;

const SPEC: &str = r#"[app]
name = "shop"

[services.web]
command = "python3 -m http.server $PORT"
replicas = 2
port = 8080

[services.worker]
command = ["./worker"]
"#;

const COMPOSE: &str = "services:\n  web:\n    image: nginx:1.27\n    ports: [\"8080:80\"]\n    networks: [front]\n";

#[test]
fn check_reports_ok_in_text_and_json() {
    let env = Env::empty();
    env.write("zenith.toml", SPEC.as_bytes());
    assert_eq!(env.ok(&["spec", "check"]), "zenith.toml: ok — app shop, 2 services\n");
    env.write("app/other.toml", SPEC.as_bytes());
    let v = env.json(&["spec", "check", "-f", "app/other.toml"]);
    assert_eq!(v["valid"], true);
    assert_eq!(v["app"], "shop");
    assert_eq!(v["services"], serde_json::json!(["web", "worker"]));
}

#[test]
fn check_reports_every_error_with_its_place_and_exits_2() {
    let env = Env::empty();
    let bad = SPEC.replace("replicas = 2", "replicas = \"two\"");
    env.write("zenith.toml", bad.as_bytes());
    let err = env.fails(&["spec", "check"], 2);
    assert!(
        err.contains("zenith.toml:6:12: services.web.replicas: expected an integer, found a string"),
        "{err}"
    );
    let bad = SPEC
        .replace("name = \"shop\"", "name = \"Shop\"")
        .replace("[\"./worker\"]", "[]");
    env.write("zenith.toml", bad.as_bytes());
    let err = env.fails(&["spec", "check"], 2);
    assert!(err.contains("zenith.toml:2:8: app.name:"), "{err}");
    assert!(
        err.contains("zenith.toml:10:11: services.worker.command: is empty"),
        "{err}"
    );
    assert!(err.contains("invalid (2 errors)"), "{err}");

    let out = env.run(&["spec", "check", "--output-format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"][0]["line"], 2);
    assert_eq!(v["errors"][1]["field"], "services.worker.command");
}

#[test]
fn check_of_a_missing_file_exits_2() {
    let env = Env::empty();
    let err = env.fails(&["spec", "check", "-f", "nope.toml"], 2);
    assert!(err.contains("nope.toml: cannot read the spec file"), "{err}");
}

#[test]
fn import_compose_prints_or_writes_a_spec_that_checks() {
    let env = Env::empty();
    env.write("shop/docker-compose.yml", COMPOSE.as_bytes());
    let out = env.run(&["spec", "import-compose", "shop/docker-compose.yml"]);
    assert!(out.status.success());
    let toml = String::from_utf8(out.stdout).unwrap();
    assert!(
        toml.contains("image = \"nginx:1.27\"") && toml.contains("port = 8080"),
        "{toml}"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("warning: shop/docker-compose.yml:5: services.web.networks"),
        "{stderr}"
    );

    env.ok(&[
        "spec",
        "import-compose",
        "shop/docker-compose.yml",
        "-o",
        "shop/zenith.toml",
    ]);
    assert_eq!(std::fs::read_to_string(env.path("shop/zenith.toml")).unwrap(), toml);
    assert_eq!(
        env.ok(&["spec", "check", "-f", "shop/zenith.toml"]),
        "shop/zenith.toml: ok — app shop, 1 service\n"
    );

    // An existing file is kept unless --force.
    env.write("shop/zenith.toml", b"# mine\n");
    let err = env.fails(
        &[
            "spec",
            "import-compose",
            "shop/docker-compose.yml",
            "-o",
            "shop/zenith.toml",
        ],
        2,
    );
    assert!(err.contains("already exists") && err.contains("--force"), "{err}");
    assert_eq!(
        std::fs::read_to_string(env.path("shop/zenith.toml")).unwrap(),
        "# mine\n"
    );
    env.ok(&[
        "spec",
        "import-compose",
        "shop/docker-compose.yml",
        "-o",
        "shop/zenith.toml",
        "--force",
    ]);
    assert_eq!(std::fs::read_to_string(env.path("shop/zenith.toml")).unwrap(), toml);
}

#[test]
fn import_compose_json_and_errors() {
    let env = Env::empty();
    env.write("shop/docker-compose.yml", COMPOSE.as_bytes());
    let v = env.json(&["spec", "import-compose", "shop/docker-compose.yml"]);
    let toml = v["toml"].as_str().unwrap();
    assert!(
        toml.contains("[services.web]") && toml.contains("container_port = 80"),
        "{v}"
    );
    assert_eq!(v["warnings"].as_array().unwrap().len(), 1, "{v}");

    env.write("bad.yml", b"services:\n  app:\n    build: .\n");
    let err = env.fails(&["spec", "import-compose", "bad.yml"], 2);
    assert!(err.contains("bad.yml:2: services.app: no image"), "{err}");
    env.fails(&["spec", "import-compose", "missing.yml"], 2);
}
