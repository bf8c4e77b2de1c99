//! One compose service → one `[services.NAME]` table: image, command, environment and restart
//! here; ports, secrets and volumes in `mounts.rs`; `deploy:` and `healthcheck:` in
//! `deploy.rs`.

use std::collections::BTreeMap;

use serde_norway::Value;

use super::mounts::{published_port, secrets, volumes};
use super::values::{go_duration, scalar, shell_words, strings, variables};
use super::{Ctx, deploy, sanitize};
use crate::config::{CommandLine, HumanDuration, RestartConfig, ServiceConfig};
use crate::model::RuntimeKind;

/// Variables the runtime sets itself; a spec may not set them.
const RESERVED_ENV: [&str; 2] = ["PORT", "ZENITH_SECRETS_DIR"];

pub(super) fn convert_all(cx: &mut Ctx<'_>, services: &Value) -> Vec<(String, ServiceConfig)> {
    let Some(map) = services.as_mapping() else {
        cx.error(&["services"], "expected a mapping from service names to services");
        return Vec::new();
    };
    let mut out: Vec<(String, ServiceConfig)> = Vec::new();
    let mut ports = BTreeMap::new();
    for (key, value) in map {
        let raw = scalar(key).unwrap_or_default();
        let name = sanitize(&raw);
        if name != raw {
            cx.warn(
                &["services", &raw],
                format!("\"{raw}\" is not a valid zenith name; renamed to \"{name}\""),
            );
        }
        if out.iter().any(|(n, _)| *n == name) {
            cx.error(
                &["services", &raw],
                format!("becomes \"{name}\", the name of another service; rename one"),
            );
            continue;
        }
        let Some(svc) = value.as_mapping() else {
            cx.error(&["services", &raw], "expected a mapping of service fields");
            continue;
        };
        let mut cfg = ServiceConfig::default();
        let mut restart: Option<&Value> = None;
        let mut scale: Option<i64> = None;
        let mut update: Option<&Value> = None;
        for (key, value) in svc {
            let key = scalar(key).unwrap_or_default();
            let at = ["services", raw.as_str(), key.as_str()];
            match key.as_str() {
                "image" => match value.as_str() {
                    Some(image) => {
                        check_variables(cx, &at, image);
                        cfg.image = Some(image.to_string());
                    }
                    None => cx.error(&at, "expected the image name as a string"),
                },
                "command" => cfg.command = command(cx, &at, value),
                "entrypoint" => cx.warn(
                    &at,
                    "not converted: zenith's docker runtime keeps the image's ENTRYPOINT; build this one into the image",
                ),
                "environment" => cfg.env = environment(cx, &at, value),
                "ports" => cfg.port = published_port(cx, &at, value, &mut ports, &mut cfg.container_port),
                "deploy" => update = deploy::deploy(cx, &at, value, &mut cfg),
                "healthcheck" => cfg.health = deploy::healthcheck(cx, &at, value),
                "restart" => restart = Some(value),
                "scale" => scale = value.as_i64(),
                "secrets" => cfg.secrets = secrets(cx, &at, value),
                "volumes" => (cfg.state_dirs, cfg.volumes) = volumes(cx, &at, value),
                "stop_grace_period" => cfg.stop_grace = duration(cx, &at, value),
                other => cx.warn(&at, format!("not converted: {}", hint(other))),
            }
        }
        finish(cx, &raw, &mut cfg, restart, scale, update);
        if cfg.image.is_some() {
            out.push((name, cfg));
        }
    }
    out
}

/// What depends on several fields: the runtime, `restart` against `deploy.restart_policy`,
/// `scale` against `deploy.replicas`, and the update settings (parallelism 0 needs replicas).
fn finish(
    cx: &mut Ctx<'_>,
    name: &str,
    cfg: &mut ServiceConfig,
    restart: Option<&Value>,
    scale: Option<i64>,
    update: Option<&Value>,
) {
    if cfg.image.is_none() {
        cx.error(
            &["services", name],
            "no image: zenith runs compose services as Docker containers; build the image and name it with `image:`",
        );
    }
    cfg.runtime = Some(RuntimeKind::Docker);
    match (restart, &cfg.restart) {
        (Some(_), Some(_)) => cx.warn(
            &["services", name, "restart"],
            "ignored: deploy.restart_policy takes precedence",
        ),
        (Some(r), None) => cfg.restart = restart_short(cx, &["services", name, "restart"], r),
        _ => {}
    }
    match (scale, cfg.replicas) {
        (Some(_), Some(_)) => cx.warn(
            &["services", name, "scale"],
            "ignored: deploy.replicas takes precedence",
        ),
        (Some(n), None) => cfg.replicas = Some(n.max(0)),
        _ => {}
    }
    if let Some(u) = update {
        cfg.update = Some(deploy::update_config(
            cx,
            &["services", name, "deploy", "update_config"],
            u,
            cfg.replicas,
        ));
    }
}

/// `restart: no | always | unless-stopped | on-failure[:N]`.
fn restart_short(cx: &mut Ctx<'_>, at: &[&str], value: &Value) -> Option<RestartConfig> {
    let text = scalar(value).unwrap_or_default();
    let (condition, max) = text.split_once(':').unwrap_or((&text, ""));
    let condition = match condition {
        "no" | "false" => crate::model::RestartCondition::None,
        "always" | "unless-stopped" => crate::model::RestartCondition::Any,
        "on-failure" => crate::model::RestartCondition::OnFailure,
        _ => {
            cx.warn(at, format!("not converted: unknown restart policy \"{text}\""));
            return None;
        }
    };
    if text == "unless-stopped" {
        cx.warn(
            at,
            "unless-stopped became condition = \"any\": zenith stops replicas only on purpose",
        );
    }
    Some(RestartConfig {
        condition: Some(condition),
        max_attempts: max.parse::<i64>().ok().filter(|n| *n > 0),
        ..Default::default()
    })
}

fn hint(key: &str) -> &'static str {
    match key {
        "build" => "zenith does not build images; build and push the image named by `image` before deploying",
        "networks" => "zenith has no container networks yet; replicas are reached through their published port",
        "depends_on" => "zenith starts services in the order the file lists them; list dependencies first",
        "container_name" => "zenith names each replica after the app, the service and the replica number",
        "env_file" => "zenith reads no env files; copy the variables into env",
        "working_dir" => "zenith's workdir is a host directory; set the container's working directory in the image",
        "expose" => "zenith routes to each replica's own PORT; expose is not needed",
        "logging" => "zenith collects replica output itself",
        _ => "zenith has no equivalent yet",
    }
}

pub(super) fn check_variables(cx: &mut Ctx<'_>, at: &[&str], value: &str) {
    for var in variables(value) {
        cx.warn(
            at,
            format!("refers to ${{{var}}}; zenith does not substitute variables, so the text is kept literally: write the real value"),
        );
    }
}

/// A compose string command is split into words as compose does (no shell runs it), so the
/// spec gets the same argv.
pub(super) fn command(cx: &mut Ctx<'_>, at: &[&str], value: &Value) -> Option<CommandLine> {
    let argv = match value {
        Value::Null => return None,
        Value::String(s) => match shell_words(s) {
            Some(words) => words,
            None => {
                cx.error(at, format!("unbalanced quote in \"{s}\""));
                return None;
            }
        },
        other => match strings(other) {
            Some(v) => v,
            None => {
                cx.error(at, "expected a string or a list of strings");
                return None;
            }
        },
    };
    argv.iter().for_each(|a| check_variables(cx, at, a));
    (!argv.is_empty()).then_some(CommandLine::Argv(argv))
}

fn environment(cx: &mut Ctx<'_>, at: &[&str], value: &Value) -> BTreeMap<String, String> {
    let mut pairs: Vec<(String, Option<String>)> = Vec::new();
    match value {
        Value::Sequence(items) => {
            for item in items {
                let item = scalar(item).unwrap_or_default();
                match item.split_once('=') {
                    Some((k, v)) => pairs.push((k.to_string(), Some(v.to_string()))),
                    None => pairs.push((item, None)),
                }
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map {
                pairs.push((scalar(k).unwrap_or_default(), scalar(v)));
            }
        }
        _ => cx.error(at, "expected a list of KEY=VALUE or a mapping"),
    }
    let mut env = BTreeMap::new();
    for (key, value) in pairs {
        let at = [at, &[key.as_str()]].concat();
        let Some(value) = value else {
            cx.warn(
                &at,
                "has no value (compose passes it through from the shell); not converted: set it in env",
            );
            continue;
        };
        if key.is_empty() || key.contains('\0') || value.contains('\0') {
            cx.warn(
                &at,
                "not converted: an empty name or a NUL byte cannot be in an environment",
            );
        } else if RESERVED_ENV.contains(&key.as_str()) {
            cx.warn(
                &at,
                format!("not converted: zenith sets {key} for every replica itself"),
            );
        } else {
            check_variables(cx, &at, &value);
            env.insert(key, value.replace("$$", "$"));
        }
    }
    env
}

fn duration(cx: &mut Ctx<'_>, at: &[&str], value: &Value) -> Option<HumanDuration> {
    let text = scalar(value).unwrap_or_default();
    let d = go_duration(&text).map(HumanDuration);
    if d.is_none() {
        cx.warn(
            at,
            format!("not converted: cannot read \"{text}\" as a duration such as \"10s\" or \"1m30s\""),
        );
    }
    d
}

pub(super) fn duration_nonzero(cx: &mut Ctx<'_>, at: &[&str], value: &Value) -> Option<HumanDuration> {
    duration(cx, at, value).filter(|d| !d.0.is_zero())
}
