//! Reading a `zenith.toml`: text → [`FileConfig`](crate::config::FileConfig) → validated
//! [`AppSpec`]. Syntax and type errors come from the TOML parser and stop at the first; they are
//! reworded here into the same `file:line:column: field: message` form as the validator's.

use std::path::Path;

use crate::config::{FileConfig, RetentionConfig};
use crate::error::{SpecError, SpecErrors};
use crate::locate::{Locator, position};
use crate::model::AppSpec;
use crate::validate;

/// What [`parse_with`] checks beyond the file itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// Require every secret file to exist and be readable (on by default; the compose importer
    /// turns it off because it writes a spec whose secret files the user has yet to provide).
    pub check_files: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions { check_files: true }
    }
}

/// Read and validate the spec file at `path`.
///
/// ```no_run
/// let spec = zenith_spec::load(std::path::Path::new("zenith.toml"))?;
/// println!("{} has {} services", spec.name, spec.services.len());
/// # Ok::<(), zenith_spec::SpecErrors>(())
/// ```
pub fn load(path: &Path) -> Result<AppSpec, SpecErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        SpecErrors::one(SpecError::file(
            path,
            format!("cannot read the spec file: {e}; check the path given with -f"),
        ))
    })?;
    parse(&text, path)
}

/// Validate spec text. `origin` is the file it came from: it names the file in messages, and
/// relative paths in the spec (workdir, secrets, state_dirs) are resolved against its
/// directory.
pub fn parse(text: &str, origin: &Path) -> Result<AppSpec, SpecErrors> {
    parse_with(text, origin, &ParseOptions::default())
}

/// [`parse`] with explicit [`ParseOptions`].
pub fn parse_with(text: &str, origin: &Path, options: &ParseOptions) -> Result<AppSpec, SpecErrors> {
    let (config, locator) = parse_toml::<FileConfig>(text, origin)?;
    validate::build(&config, origin, &locator, options)
}

/// `retention.toml` beside a spec: `[schedules.TYPE]`, `[drill]` and `[health]` tables kept
/// apart from the app's spec (as the seed kept its `retention.yaml`). Its tables join the
/// spec's; a table both files declare is an error that names both.
pub const RETENTION_FILE: &str = "retention.toml";

/// [`load`], plus the `retention.toml` beside the spec when there is one.
pub fn load_with_retention(path: &Path) -> Result<AppSpec, SpecErrors> {
    let mut spec = load(path)?;
    let file = path.parent().unwrap_or(Path::new(".")).join(RETENTION_FILE);
    if !file.exists() {
        return Ok(spec);
    }
    let text = std::fs::read_to_string(&file)
        .map_err(|e| SpecErrors::one(SpecError::file(&file, format!("cannot read {RETENTION_FILE}: {e}"))))?;
    let (config, locator) = parse_toml::<RetentionConfig>(&text, &file)?;
    validate::merge_retention(&mut spec, &config, &file, &locator, path)?;
    Ok(spec)
}

/// TOML text into `T`, with errors placed at their line and column and named by field.
fn parse_toml<'a, T: serde::de::DeserializeOwned>(
    text: &'a str,
    origin: &Path,
) -> Result<(T, Locator<'a>), SpecErrors> {
    let locator = Locator::new(text).map_err(|e| {
        let (line, column) = position(text, e.span().map_or(0, |s| s.start));
        SpecErrors::one(SpecError {
            file: origin.to_path_buf(),
            line,
            column,
            field: String::new(),
            message: format!("invalid TOML: {}", e.message().trim_end()),
        })
    })?;
    let config: T = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let (line, column) = locator.position(span.start);
        let mut field = if span.is_empty() {
            String::new()
        } else {
            locator.path_at(span.start)
        };
        let message = explain(e.message());
        if let Some(missing) = backticked(e.message()).filter(|_| e.message().starts_with("missing field")) {
            field = if field.is_empty() {
                missing
            } else {
                format!("{field}.{missing}")
            };
        }
        SpecErrors::one(SpecError {
            file: origin.to_path_buf(),
            line,
            column,
            field,
            message,
        })
    })?;
    Ok((config, locator))
}

fn backticked(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(msg[start..start + len].to_string())
}

/// Every `` `name` `` in a serde message, comma-separated.
fn backticked_list(msg: &str) -> String {
    msg.split('`').skip(1).step_by(2).collect::<Vec<_>>().join(", ")
}

/// serde's wording ("invalid type: string \"x\", expected i64") in the user's terms
/// ("expected an integer, found a string").
fn explain(msg: &str) -> String {
    let msg = msg.trim_end();
    if let Some(rest) = msg.strip_prefix("invalid type: ")
        && let Some((found, expected)) = rest.split_once(", expected ")
    {
        return format!("expected {}, found {}", kind(expected), kind(found));
    }
    if let Some(rest) = msg.strip_prefix("unknown field ")
        && let Some((field, allowed)) = rest.split_once(", ")
    {
        let allowed = backticked_list(allowed);
        return if allowed.is_empty() {
            format!("unknown field {field}; this table takes no fields")
        } else {
            format!("unknown field {field}; allowed fields are: {allowed}")
        };
    }
    if let Some(rest) = msg.strip_prefix("unknown variant ")
        && let Some((value, allowed)) = rest.split_once(", ")
    {
        return format!("unknown value {value}; expected one of: {}", backticked_list(allowed));
    }
    if msg.starts_with("missing field ") {
        return format!("missing required field{}", &msg["missing field".len()..]);
    }
    msg.to_string()
}

/// A serde type description as a user would say it.
fn kind(serde_kind: &str) -> String {
    let k = serde_kind.trim();
    let word = k.split_whitespace().next().unwrap_or(k);
    match word {
        "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" | "integer" => "an integer".into(),
        "f32" | "f64" | "floating" => "a number".into(),
        "string" | "char" => "a string".into(),
        "boolean" | "bool" => "a boolean (true or false)".into(),
        "sequence" => "an array".into(),
        "map" | "struct" => "a table".into(),
        "a" if k == "a sequence" => "an array".into(),
        "a" if k == "a map" => "a table".into(),
        _ => k.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewords_serde_messages() {
        assert_eq!(
            explain("invalid type: string \"two\", expected i64"),
            "expected an integer, found a string"
        );
        assert_eq!(
            explain("unknown field `replica`, expected one of `runtime`, `replicas`"),
            "unknown field `replica`; allowed fields are: runtime, replicas"
        );
        assert_eq!(
            explain("unknown variant `podman`, expected `process` or `docker`"),
            "unknown value `podman`; expected one of: process, docker"
        );
        assert_eq!(explain("missing field `name`"), "missing required field `name`");
        assert_eq!(explain("something else\n"), "something else");
    }
}
