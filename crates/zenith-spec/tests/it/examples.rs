//! Every example in the repository parses, and the full, canary and blue-green examples mean
//! what they say. The round trip (file types → TOML → file types) is what the compose importer
//! relies on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use zenith_spec::config::FileConfig;
use zenith_spec::formula::Formula;
use zenith_spec::{Pause, Probe, RestartCondition, RuntimeKind, UpdateOrder, UpdateStrategy, load, parse};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

#[test]
fn every_example_parses() {
    let mut seen = 0;
    let mut stack = vec![examples_dir()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                if let Err(e) = load(&path) {
                    panic!("{} does not parse:\n{e}", path.display());
                }
                seen += 1;
            }
        }
    }
    assert!(seen >= 1, "no examples found");
}

#[test]
fn the_full_example_means_what_it_says() {
    let path = examples_dir().join("zenith.toml");
    let spec = load(&path).unwrap();
    assert_eq!(spec.name, "shop");
    assert_eq!(spec.revision_history_limit, 20);
    let names: Vec<_> = spec.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["web", "worker", "cache"], "declaration order is kept");

    let web = spec.service("web").unwrap();
    assert_eq!(web.command, ["/bin/sh", "-c", "python3 -m shop.web --port $PORT"]);
    assert_eq!((web.replicas, web.port), (2, Some(8080)));
    assert_eq!(web.secrets["db_password"].file_name().unwrap(), "db_password");
    assert!(web.workdir.is_absolute() && web.state_dirs[0].ends_with("examples/data/uploads"));
    assert!(
        !web.workdir.to_string_lossy().contains(".."),
        "{}",
        web.workdir.display()
    );
    assert_eq!(web.pre_stop.as_deref().unwrap()[0], "./bin/drain");
    assert_eq!(
        (web.stop_grace, web.drain_timeout),
        (Duration::from_secs(15), Duration::from_secs(30))
    );
    let health = web.health.as_ref().unwrap();
    assert_eq!(
        health.probe,
        Probe::Http {
            path: "/healthz".into()
        }
    );
    assert_eq!((health.interval, health.retries), (Duration::from_secs(2), 3));
    assert_eq!(web.restart.condition, RestartCondition::OnFailure);
    assert_eq!(
        (web.restart.max_attempts, web.restart.window),
        (Some(5), Some(Duration::from_secs(120)))
    );
    let UpdateStrategy::Rolling(rolling) = &web.update else {
        panic!("web is not rolling: {:?}", web.update)
    };
    assert_eq!(rolling.progress_deadline, Duration::from_secs(90));

    let worker = spec.service("worker").unwrap();
    assert_eq!(worker.replicas, 1, "default");
    let UpdateStrategy::Rolling(rolling) = &worker.update else {
        panic!("worker is not rolling: {:?}", worker.update)
    };
    assert_eq!(
        (rolling.max_surge, rolling.max_unavailable, rolling.order),
        (0, 1, UpdateOrder::StopFirst)
    );

    let cache = spec.service("cache").unwrap();
    assert_eq!(
        (cache.runtime, cache.image.as_deref()),
        (RuntimeKind::Docker, Some("redis:7.4-alpine"))
    );
    assert_eq!(cache.health.as_ref().unwrap().probe, Probe::Tcp);
    assert_eq!(
        cache.health.as_ref().unwrap().timeout,
        Duration::from_secs(2),
        "default"
    );
}

#[test]
fn the_rollout_examples_mean_what_they_say() {
    let spec = load(&examples_dir().join("canary.toml")).unwrap();
    let web = spec.service("web").unwrap();
    assert_eq!(
        (web.command.as_slice(), web.port, web.replicas),
        (&["zenith".to_string(), "demo-app".into()][..], Some(8080), 3)
    );
    let UpdateStrategy::Canary(canary) = &web.update else {
        panic!("not a canary: {:?}", web.update)
    };
    let weights: Vec<u32> = canary.steps.iter().map(|s| s.weight).collect();
    assert_eq!(weights, [10, 25, 50, 75, 100]);
    assert_eq!(canary.steps[0].pause, Some(Pause::Manual));
    let score = canary.analysis.score.as_ref().unwrap();
    assert_eq!(score.min, 50.0);
    assert!(Formula::parse(&score.formula).is_ok());
    assert_eq!(canary.probes.len(), 1);
    assert_eq!(canary.probes[0].body_contains.as_deref(), Some("hello"));

    let spec = load(&examples_dir().join("blue-green.toml")).unwrap();
    let UpdateStrategy::BlueGreen(bg) = &spec.services[0].update else {
        panic!("not blue-green: {:?}", spec.services[0].update)
    };
    assert!(!bg.auto_promote);
    assert_eq!(bg.scale_down_delay, Duration::from_secs(300));
    assert_eq!(bg.probes.len(), 2);
}

#[test]
fn file_types_round_trip_through_toml() {
    for name in ["zenith.toml", "canary.toml", "blue-green.toml"] {
        let path = examples_dir().join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let config: FileConfig = toml::from_str(&text).unwrap();
        let written = toml::to_string(&config).unwrap();
        assert_eq!(toml::from_str::<FileConfig>(&written).unwrap(), config, "{name}");
        assert_eq!(
            parse(&written, &path).unwrap(),
            load(&path).unwrap(),
            "{name}: the same app, whatever the layout"
        );
    }
}
