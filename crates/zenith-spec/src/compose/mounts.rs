//! What a compose service attaches to the host: published ports (→ `port`), secrets
//! (→ `secrets`, always as files) and bind-mounted volumes (→ `state_dirs`).

use std::collections::BTreeMap;

use serde_norway::Value;

use super::Ctx;
use super::values::scalar;

/// The first published TCP port becomes the service's public `port`; `taken` maps ports
/// already given to earlier services, which zenith cannot share.
pub(super) fn published_port(
    cx: &mut Ctx<'_>,
    at: &[&str],
    value: &Value,
    taken: &mut BTreeMap<u16, String>,
    container_port: &mut Option<i64>,
) -> Option<i64> {
    let Some(items) = value.as_sequence() else {
        cx.warn(at, "not converted: expected a list of ports");
        return None;
    };
    let mut chosen = None;
    for item in items {
        let (published, target, protocol) = match item {
            Value::Mapping(m) => (
                m.get("published").and_then(scalar),
                m.get("target").and_then(scalar).unwrap_or_default(),
                m.get("protocol").and_then(scalar).unwrap_or_else(|| "tcp".into()),
            ),
            other => {
                let text = scalar(other).unwrap_or_default();
                let (spec, protocol) = text.split_once('/').unwrap_or((&text, "tcp"));
                match spec.rsplit_once(':') {
                    // `[host_ip:]published:target`: the published port is the last part before target.
                    Some((rest, target)) => {
                        let published = rest.rsplit(':').next().map(str::to_string);
                        (published, target.to_string(), protocol.to_string())
                    }
                    None => (None, spec.to_string(), protocol.to_string()),
                }
            }
        };
        let Some(published) = published.filter(|p| !p.is_empty()) else {
            cx.warn(
                at,
                format!("container port {target} is not published; nothing to convert"),
            );
            continue;
        };
        if protocol != "tcp" {
            cx.warn(
                at,
                format!("port {published}/{protocol} not converted: zenith routes TCP only"),
            );
            continue;
        }
        let Some(port) = published.parse::<u16>().ok().filter(|p| *p > 0) else {
            cx.warn(
                at,
                format!("port \"{published}\" not converted: zenith takes one port, not a range"),
            );
            continue;
        };
        if chosen.is_some() {
            cx.warn(
                at,
                format!("port {port} not converted: a zenith service has one public port, the first one"),
            );
            continue;
        }
        if let Some(other) = taken.get(&port) {
            cx.warn(at, format!("port {port} not converted: service {other} already has it"));
            continue;
        }
        if target != published {
            *container_port = target.parse::<i64>().ok();
        }
        taken.insert(port, at[1].to_string());
        chosen = Some(i64::from(port));
    }
    chosen
}

/// Secrets become files: a secret defined with `file:` keeps that file; external and
/// environment secrets get a `./secrets/NAME` file that the user must write.
pub(super) fn secrets(cx: &mut Ctx<'_>, at: &[&str], value: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for item in value.as_sequence().into_iter().flatten() {
        let (source, target) = match item {
            Value::Mapping(m) => {
                for extra in ["uid", "gid", "mode"] {
                    if m.contains_key(extra) {
                        cx.warn(
                            at,
                            format!("{extra} not converted: zenith writes secret files readable by the replica only"),
                        );
                    }
                }
                (m.get("source").and_then(scalar), m.get("target").and_then(scalar))
            }
            other => (scalar(other), None),
        };
        let Some(source) = source else {
            cx.warn(at, "an entry without a source was not converted");
            continue;
        };
        // Compose mounts a secret at /run/secrets/TARGET; zenith's name is that file name.
        let target = target.unwrap_or_else(|| source.clone());
        let name: String = target
            .rsplit('/')
            .next()
            .unwrap_or(&target)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let name = name.trim_start_matches('.').to_string();
        if name.is_empty() {
            cx.warn(
                at,
                format!("secret \"{target}\" not converted: its name has no usable characters"),
            );
            continue;
        }
        let placeholder = format!("./secrets/{name}");
        let at = [at, &[name.as_str()]].concat();
        let definition = cx
            .top_secrets
            .and_then(|s| s.get(source.as_str()))
            .and_then(Value::as_mapping);
        let file = match definition {
            Some(d) if d.get("file").and_then(Value::as_str).is_some() => {
                d.get("file").and_then(Value::as_str).unwrap_or_default().to_string()
            }
            Some(d) if d.contains_key("environment") => {
                let var = d.get("environment").and_then(scalar).unwrap_or_default();
                cx.warn(
                    &at,
                    format!("comes from ${var}; zenith reads secrets from files: write its value to {placeholder}"),
                );
                placeholder
            }
            Some(_) => {
                cx.warn(
                    &at,
                    format!("external secret; zenith reads secrets from files: write its value to {placeholder}"),
                );
                placeholder
            }
            None => {
                cx.warn(
                    &at,
                    format!("not defined under top-level secrets; write its value to {placeholder}"),
                );
                placeholder
            }
        };
        out.insert(name, file);
    }
    out
}

/// Bind mounts become state directories (zenith snapshots them); named volumes, tmpfs and
/// anonymous volumes have no zenith form.
/// Mounts become `volumes` entries; a writable bind mount is also a state directory (zenith
/// snapshots it). Returns (state_dirs, volumes).
pub(super) fn volumes(cx: &mut Ctx<'_>, at: &[&str], value: &Value) -> (Vec<String>, Vec<String>) {
    let mut dirs = Vec::new();
    let mut mounts = Vec::new();
    for item in value.as_sequence().into_iter().flatten() {
        let (kind, source, target, read_only) = match item {
            Value::Mapping(m) => (
                m.get("type").and_then(scalar).unwrap_or_else(|| "volume".into()),
                m.get("source").and_then(scalar).unwrap_or_default(),
                m.get("target").and_then(scalar).unwrap_or_default(),
                m.get("read_only").and_then(Value::as_bool).unwrap_or(false),
            ),
            other => {
                let text = scalar(other).unwrap_or_default();
                let mut parts = text.split(':');
                let first = parts.next().unwrap_or_default().to_string();
                match parts.next() {
                    Some(target) => {
                        let bind = first.starts_with(['.', '/', '~']);
                        let kind = if bind { "bind" } else { "volume" };
                        let ro = parts.next().is_some_and(|o| o.split(',').any(|o| o == "ro"));
                        (kind.to_string(), first, target.to_string(), ro)
                    }
                    None => ("volume".to_string(), String::new(), first, false),
                }
            }
        };
        let suffix = if read_only { ":ro" } else { "" };
        match kind.as_str() {
            "bind" if source.starts_with('~') => cx.warn(
                at,
                format!("bind mount {source} not converted: zenith does not expand ~; write the full path"),
            ),
            "bind" if !source.is_empty() => {
                if !read_only {
                    cx.warn(
                        at,
                        format!("writable bind mount {source} also became a state_dirs entry: zenith snapshots it"),
                    );
                    dirs.push(source.clone());
                }
                mounts.push(format!("{source}:{target}{suffix}"));
            }
            "volume" if !source.is_empty() => mounts.push(format!("{source}:{target}{suffix}")),
            _ => cx.warn(
                at,
                format!("{kind} mount at {target} not converted: zenith has no equivalent"),
            ),
        }
    }
    (dirs, mounts)
}
