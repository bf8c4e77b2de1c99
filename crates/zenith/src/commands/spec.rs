//! `zenith spec`: validate a `zenith.toml` without deploying it, and convert a docker-compose
//! file into one. Both work offline: they read files and never talk to the daemon.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

use super::CmdResult;
use crate::exit::{OK, USAGE, usage};
use crate::output::Out;

#[derive(Subcommand, Debug)]
pub enum SpecCommand {
    /// Validate an app spec and report every problem with its line, column and field.
    Check {
        /// The spec file.
        #[arg(short = 'f', long = "file", default_value = "zenith.toml", value_name = "FILE")]
        file: PathBuf,
    },
    /// Convert a docker-compose file's services into a zenith.toml (warnings go to stderr).
    ImportCompose {
        /// The compose file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Write the spec to this file instead of stdout; keep it beside the compose file so
        /// relative paths still point at the same places.
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: Option<PathBuf>,
        /// Replace OUT if it exists.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(cmd: SpecCommand, out: Out) -> CmdResult {
    match cmd {
        SpecCommand::Check { file } => check(&file, out),
        SpecCommand::ImportCompose { file, output, force } => import(&file, output.as_deref(), force, out),
    }
}

fn check(file: &Path, out: Out) -> CmdResult {
    match zenith_spec::load_with_retention(file) {
        Ok(spec) => {
            if out.json() {
                out.print_json(&json!({
                    "file": file,
                    "valid": true,
                    "app": spec.name,
                    "services": spec.services.iter().map(|s| &s.name).collect::<Vec<_>>(),
                    "digest": spec.digest(),
                    "errors": [],
                }))?;
            } else {
                let n = spec.services.len();
                let plural = if n == 1 { "" } else { "s" };
                println!("{}: ok — app {}, {n} service{plural}", file.display(), spec.name);
            }
            Ok(OK)
        }
        Err(errors) => {
            if out.json() {
                out.print_json(&json!({ "file": file, "valid": false, "errors": errors }))?;
            } else {
                for e in &errors {
                    eprintln!("error: {e}");
                }
                let n = errors.len();
                eprintln!(
                    "{}: invalid ({n} error{})",
                    file.display(),
                    if n == 1 { "" } else { "s" }
                );
            }
            Ok(USAGE)
        }
    }
}

fn import(file: &Path, output: Option<&Path>, force: bool, out: Out) -> CmdResult {
    if let Some(dest) = output.filter(|d| d.exists() && !force) {
        return Err(usage(format!(
            "{} already exists; choose another file with -o, or pass --force to replace it",
            dest.display()
        ))
        .into());
    }
    let yaml = std::fs::read_to_string(file)
        .map_err(|e| usage(format!("cannot read the compose file {}: {e}", file.display())))?;
    let imported = match zenith_spec::compose::import(&yaml, file) {
        Ok(i) => i,
        Err(errors) => {
            if out.json() {
                out.print_json(&json!({ "file": file, "errors": errors }))?;
            } else {
                for e in &errors {
                    eprintln!("error: {e}");
                }
            }
            return Ok(USAGE);
        }
    };
    if !out.quiet && !out.json() {
        for w in &imported.warnings {
            eprintln!("warning: {w}");
        }
    }
    if let Some(dest) = output {
        write_new(dest, imported.toml.as_bytes())?;
        out.note(format!(
            "wrote {}; check it with `zenith spec check -f {}`",
            dest.display(),
            dest.display()
        ));
    }
    if out.json() {
        out.print_json(&json!({
            "file": file,
            "output": output,
            "toml": imported.toml,
            "warnings": imported.warnings,
        }))?;
    } else if output.is_none() {
        print!("{}", imported.toml);
    }
    Ok(OK)
}

/// Write through a temporary file in the same directory and rename it into place, so an
/// interrupted run never leaves half a spec behind.
fn write_new(dest: &Path, data: &[u8]) -> anyhow::Result<()> {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(data).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, dest));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", dest.display()))
}
