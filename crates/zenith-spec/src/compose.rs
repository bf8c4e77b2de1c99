//! docker-compose import: a compose file's `services` become a `zenith.toml`. What has a
//! zenith equivalent converts; everything else produces a warning that names it, so nothing is
//! dropped silently. The output is checked with [`crate::parse_with`] before it is returned, so
//! an import either yields a valid spec or an error.
//!
//! YAML is read with `serde_norway`, a maintained fork of `serde_yaml` (archived by its author
//! in 2024) that keeps the same API and the libyaml-based parser compose files are tested with.

mod deploy;
mod mounts;
mod service;
mod values;

use std::path::Path;

use serde_norway::{Mapping, Value};

use crate::config::{AppConfig, FileConfig, Services};
use crate::error::{SpecError, SpecErrors};
use crate::locate::join;
use crate::parse::{ParseOptions, parse_with};
use crate::validate::is_name;

/// The result of an import: the spec's text and what the user should review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// A complete `zenith.toml`, with the warnings repeated as comments at its top.
    pub toml: String,
    /// One line per compose field that did not convert exactly, e.g.
    /// `compose.yml:17: services.web.deploy.placement: not converted: …`.
    pub warnings: Vec<String>,
}

/// Convert compose YAML. `origin` is the compose file's path: it names the file in messages,
/// gives the app its name when the file has no `name:` (its directory's), and is where the
/// spec's relative paths (secrets, bind mounts) point from, so write the result beside it.
pub fn import(yaml: &str, origin: &Path) -> Result<Imported, SpecErrors> {
    let mut root: Value = serde_norway::from_str(yaml).map_err(|e| {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        SpecErrors::one(SpecError {
            file: origin.to_path_buf(),
            line,
            column,
            field: String::new(),
            message: format!("invalid YAML: {e}"),
        })
    })?;
    // `<<: *defaults` merge keys are common in compose files; resolve them as compose does.
    root.apply_merge()
        .map_err(|e| SpecErrors::one(SpecError::file(origin, format!("invalid YAML merge key: {e}"))))?;
    let Some(top) = root.as_mapping() else {
        return Err(SpecErrors::one(SpecError::file(
            origin,
            "not a compose file: expected a mapping with `services:`",
        )));
    };
    let mut cx = Ctx {
        text: yaml,
        origin,
        top_secrets: top.get("secrets").and_then(Value::as_mapping),
        warnings: Vec::new(),
        errors: Vec::new(),
    };
    let name = app_name(&mut cx, top);
    let mut services = Vec::new();
    for (key, value) in top {
        let key = values::scalar(key).unwrap_or_default();
        match key.as_str() {
            "name" | "secrets" => {}
            "services" => services = service::convert_all(&mut cx, value),
            "version" => cx.warn(&["version"], "ignored: the field is obsolete in compose too"),
            other if other.starts_with("x-") => cx.warn(
                &[other],
                "extension field not converted (anchors that use it were applied)",
            ),
            other => cx.warn(&[other], "top-level section not converted: zenith has no equivalent"),
        }
    }
    if services.is_empty() && cx.errors.is_empty() {
        cx.error(
            &["services"],
            "no services to import: the file needs a `services:` mapping",
        );
    }
    if !cx.errors.is_empty() {
        return Err(SpecErrors(cx.errors));
    }
    let config = FileConfig {
        app: AppConfig {
            name,
            revision_history_limit: None,
        },
        services: Services(services),
        schedules: Default::default(),
        drill: None,
        health: None,
    };
    cx.warnings.sort_by_key(|w| w.0);
    let warnings: Vec<String> = cx.warnings.into_iter().map(|w| w.1).collect();
    let toml = render(&config, origin, &warnings)?;
    // The contract: whatever import returns, parse accepts. Secret files are the user's to
    // provide (a warning says so), so only they are left unchecked.
    parse_with(&toml, origin, &ParseOptions { check_files: false }).map_err(|e| {
        SpecErrors::one(SpecError::file(
            origin,
            format!("the converted spec does not validate ({e}); this is an importer bug, please report it"),
        ))
    })?;
    Ok(Imported { toml, warnings })
}

fn render(config: &FileConfig, origin: &Path, warnings: &[String]) -> Result<String, SpecErrors> {
    let body = toml::to_string(config)
        .map_err(|e| SpecErrors::one(SpecError::file(origin, format!("cannot write the spec as TOML: {e}"))))?;
    let source = origin.file_name().unwrap_or(origin.as_os_str()).to_string_lossy();
    let mut out = format!("# Imported from {source} by `zenith spec import-compose`.\n");
    if !warnings.is_empty() {
        out.push_str("# Review these before deploying:\n");
        for w in warnings {
            out.push_str(&format!("#   {}\n", w.replace('\n', " ")));
        }
    }
    out.push('\n');
    out.push_str(&body);
    Ok(out)
}

/// The compose project's `name:`, else its directory's name, made a valid zenith name.
fn app_name(cx: &mut Ctx<'_>, top: &Mapping) -> String {
    let (raw, from) = match top.get("name").and_then(Value::as_str) {
        Some(n) => (n.to_string(), "name"),
        None => {
            let abs = std::path::absolute(cx.origin).unwrap_or_else(|_| cx.origin.to_path_buf());
            let dir = abs
                .parent()
                .and_then(Path::file_name)
                .map(|d| d.to_string_lossy().into_owned());
            (dir.unwrap_or_default(), "")
        }
    };
    let name = sanitize(&raw);
    if name != raw {
        let what = if from.is_empty() { "the directory name" } else { "name" };
        cx.warn(
            &[from],
            format!("{what} \"{raw}\" is not a valid zenith name; the app is named \"{name}\""),
        );
    }
    name
}

/// Lowercase, runs of other characters → one `-`, at most 63 long; `app` if nothing is left.
pub(crate) fn sanitize(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.to_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut name: String = out.trim_matches('-').chars().take(63).collect();
    name.truncate(name.trim_end_matches('-').len());
    if is_name(&name) { name } else { "app".into() }
}

/// What an import collects as it walks the file.
pub(super) struct Ctx<'a> {
    text: &'a str,
    origin: &'a Path,
    /// Top-level `secrets:` definitions, which say where each secret's value comes from.
    top_secrets: Option<&'a Mapping>,
    /// With their line, to be sorted into file order (some are found out of order).
    warnings: Vec<(usize, String)>,
    errors: Vec<SpecError>,
}

impl Ctx<'_> {
    fn place(&self, path: &[&str], line: usize) -> String {
        let file = self.origin.display();
        let field = join(path);
        match (line, field.is_empty()) {
            (0, true) => format!("{file}"),
            (0, false) => format!("{file}: {field}"),
            (n, true) => format!("{file}:{n}"),
            (n, false) => format!("{file}:{n}: {field}"),
        }
    }

    pub(super) fn warn(&mut self, path: &[&str], message: impl std::fmt::Display) {
        let line = values::yaml_line(self.text, path);
        let w = format!("{}: {message}", self.place(path, line));
        self.warnings.push((line, w));
    }

    pub(super) fn error(&mut self, path: &[&str], message: impl Into<String>) {
        let line = values::yaml_line(self.text, path);
        self.errors.push(SpecError {
            file: self.origin.to_path_buf(),
            line,
            column: 0,
            field: join(path),
            message: message.into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes_names() {
        assert_eq!(sanitize("My_Project.v2"), "my-project-v2");
        assert_eq!(sanitize("--x--"), "x");
        assert_eq!(sanitize("ÄÖ"), "app");
        assert_eq!(sanitize(&"a".repeat(80)).len(), 63);
    }
}
