//! `zenith snapshot push ID REGISTRY/REPO[:TAG]` and `zenith snapshot pull REGISTRY/REPO:TAG`:
//! carry a snapshot through an OCI registry (the transport lives in `zenith-oci`).

use std::path::PathBuf;

use clap::Args;
use serde_json::json;
use zenith_oci::auth::{Credentials, Secret};
use zenith_oci::{Client, ClientOptions, Reference};

use super::CmdResult;
use crate::env;
use crate::exit::{Failure, OK, PROBLEM, USAGE, WRONG_PASSWORD, usage};
use crate::output::{Out, bytes};
use crate::repo_open::{RepoArgs, other_password, password};

// The registry variables, documented in docs/cli.md with the others of `env.rs`.
/// User name for the registry (with `ZENITH_REGISTRY_PASSWORD`).
const ZENITH_REGISTRY_USERNAME: &str = "ZENITH_REGISTRY_USERNAME";
/// Password or access token for the registry.
const ZENITH_REGISTRY_PASSWORD: &str = "ZENITH_REGISTRY_PASSWORD";
/// Comma-separated registry hosts (`host` or `host:port`) spoken to in plain http.
const ZENITH_INSECURE_REGISTRIES: &str = "ZENITH_INSECURE_REGISTRIES";
/// Docker's configuration directory, whose `config.json` may hold registry credentials.
const DOCKER_CONFIG: &str = "DOCKER_CONFIG";
const HOME: &str = "HOME";

#[derive(Args, Debug)]
pub struct PushArgs {
    /// The snapshot to push: id, name, tag or `latest`.
    pub snapshot: String,
    /// Where to: HOST[:PORT]/REPOSITORY[:TAG] (the tag defaults to `latest`).
    #[arg(value_name = "REGISTRY/REPO[:TAG]")]
    pub reference: String,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// What to pull: HOST[:PORT]/REPOSITORY[:TAG] or HOST[:PORT]/REPOSITORY@sha256:DIGEST.
    #[arg(value_name = "REGISTRY/REPO:TAG")]
    pub reference: String,
}

pub fn push(a: PushArgs, args: &RepoArgs, out: Out) -> CmdResult {
    let reference = parse(&a.reference)?;
    let repo = args.open()?;
    let snap = repo.find_snapshot(&a.snapshot)?;
    let mut client = client(&reference)?;
    let bar = out.progress();
    let rep = zenith_oci::push::push(&repo, &snap, &reference, &mut client, args.retry_lock, &bar).map_err(failure)?;
    if out.json() {
        out.print_json(&json!({"report": rep}))?;
    } else {
        println!("pushed snapshot {} to {}", rep.snapshot.short(), rep.reference);
        println!("manifest {}", rep.manifest_digest);
        println!(
            "{} blobs uploaded ({}), {} already in the registry; {} in all",
            rep.blobs_uploaded,
            bytes(rep.bytes_uploaded),
            rep.blobs_skipped,
            bytes(rep.bytes_total)
        );
    }
    Ok(OK)
}

pub fn pull(a: PullArgs, args: &RepoArgs, out: Out) -> CmdResult {
    let reference = parse(&a.reference)?;
    let local = args.open()?;
    // The artifact opens with its own password when one is given, else the repository's.
    let pw = other_password(|| {
        password(
            env::ZENITH_PASSWORD,
            args.password_file.as_deref(),
            "artifact password: ",
            false,
        )
    })?;
    let mut client = client(&reference)?;
    let bar = out.progress();
    let rep = zenith_oci::pull::pull(&local, &pw, &reference, &mut client, args.retry_lock, &bar).map_err(failure)?;
    if out.json() {
        out.print_json(&json!({"report": rep}))?;
    } else {
        if rep.copy.skipped.is_empty() {
            println!("pulled snapshot {} from {}", rep.snapshot.short(), rep.reference);
        } else {
            println!("snapshot {} is already in the repository", rep.snapshot.short());
        }
        println!(
            "{} blobs downloaded ({}); {} blobs added to the repository ({} stored)",
            rep.blobs_downloaded,
            bytes(rep.bytes_downloaded),
            rep.copy.blobs_added,
            bytes(rep.copy.bytes_added_stored)
        );
    }
    Ok(OK)
}

fn parse(s: &str) -> anyhow::Result<Reference> {
    s.parse::<Reference>().map_err(|e| usage(e.to_string()))
}

/// A client with the credentials the environment or docker's config gives for the registry.
fn client(reference: &Reference) -> anyhow::Result<Client> {
    let credentials = match (env::var(ZENITH_REGISTRY_USERNAME), env::var(ZENITH_REGISTRY_PASSWORD)) {
        (Some(username), Some(p)) => Some(Credentials {
            username,
            password: Secret::new(p),
        }),
        (None, None) => docker_credentials(reference),
        _ => {
            return Err(usage(format!(
                "set both {ZENITH_REGISTRY_USERNAME} and {ZENITH_REGISTRY_PASSWORD}, or neither"
            )));
        }
    };
    let insecure = env::var(ZENITH_INSECURE_REGISTRIES)
        .map(|v| {
            v.split(',')
                .map(str::to_string)
                .filter(|h| !h.trim().is_empty())
                .collect()
        })
        .unwrap_or_default();
    Ok(Client::new(reference, ClientOptions { credentials, insecure }))
}

/// `auths[registry]` of `$DOCKER_CONFIG/config.json`, else of `~/.docker/config.json`.
fn docker_credentials(reference: &Reference) -> Option<Credentials> {
    let dir = env::var(DOCKER_CONFIG)
        .map(PathBuf::from)
        .or_else(|| env::var(HOME).map(|h| PathBuf::from(h).join(".docker")))?;
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    zenith_oci::auth::from_docker_config(&text, &reference.registry)
}

/// Exit codes for the transport's errors: the engine's own map as everywhere else; a wrong
/// artifact password as a wrong repository password; bad references and unknown tags are
/// input errors; everything else (unreachable, refused, damaged) is a problem.
fn failure(e: zenith_oci::Error) -> Failure {
    match e {
        zenith_oci::Error::Snapshot(inner) => inner.into(),
        e => {
            let code = match &e {
                zenith_oci::Error::WrongPassword { .. } => WRONG_PASSWORD,
                e if e.is_input() => USAGE,
                _ => PROBLEM,
            };
            Failure { code, error: e.into() }
        }
    }
}
