//! docker-compose import: the team's own compose file converts with everything it says either
//! converted or warned about, and the common compose forms map as documented.

use std::path::Path;

use zenith_spec::compose::import;
use zenith_spec::{ParseOptions, Probe, RestartCondition, RuntimeKind, UpdateOrder, UpdateStrategy, parse, parse_with};

const SEED: &str = include_str!("../fixtures/seed-compose.yml");

fn warned(warnings: &[String], field: &str) -> bool {
    warnings.iter().any(|w| w.contains(&format!(" {field}: ")))
}

#[test]
fn the_seed_compose_file_converts() {
    let origin = Path::new("omega/docker-compose.yml");
    let out = import(SEED, origin).unwrap();
    let spec = parse_with(&out.toml, origin, &ParseOptions { check_files: false }).unwrap();
    assert_eq!(spec.name, "omega", "named after the directory");
    let feed = spec.service("btc-live-feed").unwrap();
    assert_eq!(feed.runtime, RuntimeKind::Docker);
    assert_eq!(feed.image.as_deref(), Some("omega-btc-ai/btc-live-feed:latest"));
    assert_eq!(feed.replicas, 3);
    let restart = &feed.restart;
    assert_eq!(restart.condition, RestartCondition::Any);
    assert_eq!(restart.delay.as_secs(), 5);
    assert_eq!(restart.max_attempts, Some(3));
    assert_eq!(restart.window.map(|w| w.as_secs()), Some(120));
    let UpdateStrategy::Rolling(rolling) = &feed.update else {
        panic!("feed is not rolling: {:?}", feed.update)
    };
    assert_eq!(
        (rolling.max_surge, rolling.max_unavailable, rolling.order),
        (1, 0, UpdateOrder::StartFirst)
    );
    assert!(feed.secrets["redis_password"].ends_with("omega/secrets/redis_password"));
    assert_eq!(feed.env["REDIS_HOST"], "${REDIS_HOST}", "kept literally");
    assert_eq!(feed.env["LOG_PREFIX"], "🔱 OMEGA BTC AI");
    assert_eq!(feed.env.len(), 6);

    let w = &out.warnings;
    for field in [
        "services.btc-live-feed.deploy.placement",
        "services.btc-live-feed.networks",
        "services.btc-live-feed.deploy.update_config.delay",
        "services.btc-live-feed.environment.REDIS_HOST",
        "services.btc-live-feed.environment.WEBSOCKET_URL",
        "services.btc-live-feed.secrets.redis_password",
        "networks",
        "version",
    ] {
        assert!(warned(w, field), "no warning for {field}:\n{}", w.join("\n"));
    }
    assert!(
        w.iter()
            .any(|w| w.starts_with("omega/docker-compose.yml:19: services.btc-live-feed.deploy.placement")),
        "{w:#?}"
    );
    assert!(
        out.toml.starts_with("# Imported from docker-compose.yml"),
        "{}",
        out.toml
    );
}

#[test]
fn imported_spec_passes_parse_once_secret_files_exist() {
    let dir = tempfile::tempdir().unwrap();
    let origin = dir.path().join("docker-compose.yml");
    let out = import(SEED, &origin).unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("secrets/redis_password"), "pw").unwrap();
    parse(&out.toml, &dir.path().join("zenith.toml")).unwrap();
}

const FORMS: &str = r#"
name: My_Shop
services:
  web:
    image: "nginx:${TAG:-1.27}"
    command: nginx -g "daemon off;"
    entrypoint: ["/docker-entrypoint.sh"]
    environment:
      LOG: info
      WORKERS: 4
      PORT: 80
      FROM_SHELL:
    ports:
      - "127.0.0.1:8080:80"
      - "8443:443"
      - target: 9000
    volumes:
      - ./html:/usr/share/nginx/html:ro
      - cache:/var/cache/nginx
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost/"]
      interval: 1m30s
      retries: 5
    stop_grace_period: 20s
    restart: on-failure:4
    depends_on: [api]
    build: .
  api:
    image: shop/api
    healthcheck:
      test: curl -f http://localhost:3000/health || exit 1
    deploy:
      update_config:
        parallelism: 2
        failure_action: pause
      mode: global
    secrets:
      - source: api_key
        target: /run/secrets/api.key
        mode: 0400
  quiet:
    image: busybox
    healthcheck:
      disable: true
secrets:
  api_key:
    file: ./keys/api.txt
volumes:
  cache: {}
x-defaults: &defaults
  restart: always
"#;

#[test]
fn common_compose_forms() {
    let out = import(FORMS, Path::new("docker-compose.yml")).unwrap();
    let spec = parse_with(
        &out.toml,
        Path::new("docker-compose.yml"),
        &ParseOptions { check_files: false },
    )
    .unwrap();
    let w = &out.warnings;
    assert_eq!(spec.name, "my-shop");
    let web = spec.service("web").unwrap();
    assert_eq!(
        web.command,
        ["nginx", "-g", "daemon off;"],
        "split as compose splits it"
    );
    assert_eq!(web.port, Some(8080));
    assert_eq!(web.env.len(), 2, "{:?}", web.env);
    assert!(web.state_dirs.is_empty(), "a read-only mount is not state");
    assert_eq!(web.container.port, Some(80));
    let mounts: Vec<&str> = web.container.volumes.iter().map(|v| v.target.as_str()).collect();
    assert_eq!(mounts, ["/usr/share/nginx/html", "/var/cache/nginx"]);
    assert!(web.container.volumes[0].read_only);
    let health = web.health.as_ref().unwrap();
    assert_eq!(
        health.probe,
        Probe::Exec {
            command: vec!["curl".into(), "-f".into(), "http://localhost/".into()]
        }
    );
    assert_eq!(
        (health.interval.as_secs(), health.timeout.as_secs(), health.retries),
        (90, 30, 5)
    );
    assert_eq!(web.stop_grace.as_secs(), 20);
    assert_eq!(
        (web.restart.condition, web.restart.max_attempts),
        (RestartCondition::OnFailure, Some(4))
    );
    for field in [
        "services.web.image",
        "services.web.entrypoint",
        "services.web.environment.PORT",
        "services.web.environment.FROM_SHELL",
        "services.web.ports",
        "services.web.depends_on",
        "services.web.build",
        "services.api.deploy.update_config.failure_action",
        "services.api.deploy.mode",
        "services.api.secrets",
        "volumes",
        "x-defaults",
        "name",
    ] {
        assert!(warned(w, field), "no warning for {field}:\n{}", w.join("\n"));
    }
    let api = spec.service("api").unwrap();
    let UpdateStrategy::Rolling(rolling) = &api.update else {
        panic!("api is not rolling: {:?}", api.update)
    };
    assert_eq!(
        (rolling.max_surge, rolling.max_unavailable, rolling.order),
        (0, 2, UpdateOrder::StopFirst)
    );
    assert_eq!(
        api.health.as_ref().unwrap().probe,
        Probe::Exec {
            command: vec![
                "/bin/sh".into(),
                "-c".into(),
                "curl -f http://localhost:3000/health || exit 1".into()
            ]
        }
    );
    assert!(api.secrets["api.key"].ends_with("keys/api.txt"));
    assert!(spec.service("quiet").unwrap().health.is_none());
}

#[test]
fn a_service_without_an_image_is_an_error() {
    let e = import("services:\n  app:\n    build: .\n", Path::new("compose.yml")).unwrap_err();
    assert_eq!(e.0[0].field, "services.app");
    assert_eq!(e.0[0].line, 2);
    assert!(e.0[0].message.contains("no image"), "{e}");
}

#[test]
fn invalid_yaml_has_a_position() {
    let e = import("services:\n  web: [\n", Path::new("compose.yml")).unwrap_err();
    assert!(e.0[0].line >= 2 && e.0[0].message.starts_with("invalid YAML"), "{e}");
}
