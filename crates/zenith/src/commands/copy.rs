//! `zenith snapshot copy ... --to REPO`.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;
use zenith_snapshot::Repository;

use super::CmdResult;
use crate::env;
use crate::exit::OK;
use crate::output::{Out, bytes};
use crate::repo_open::{RepoArgs, other_password, password};

#[derive(Args, Debug)]
pub struct CopyArgs {
    /// Snapshots to copy (ids, names, tags or `latest`).
    #[arg(required = true)]
    pub snapshots: Vec<String>,
    /// The destination repository (its password: ZENITH_OTHER_PASSWORD(_FILE), or the same).
    #[arg(long, value_name = "REPO")]
    pub to: PathBuf,
}

pub fn run(a: CopyArgs, args: &RepoArgs, out: Out) -> CmdResult {
    let src = args.open()?;
    let pw = other_password(|| {
        password(
            env::ZENITH_PASSWORD,
            args.password_file.as_deref(),
            "destination password: ",
            false,
        )
    })?;
    if !a.to.join("config").exists() {
        return Err(zenith_snapshot::Error::NotARepository { path: a.to }.into());
    }
    let dst = Repository::open(&a.to, &pw)?;
    let all = src.snapshots()?;
    let mut chosen = Vec::new();
    for q in &a.snapshots {
        let s = zenith_snapshot::snapshot::find(&all, q)?;
        if !chosen.iter().any(|c: &zenith_snapshot::Snapshot| c.id == s.id) {
            chosen.push(s.clone());
        }
    }
    let bar = out.progress();
    let rep = zenith_snapshot::copy::copy(&src, &dst, &chosen, args.retry_lock, &bar)?;
    if out.json() {
        out.print_json(&json!({"report": rep}))?;
    } else {
        for (from, to) in &rep.copied {
            println!("copied snapshot {} -> {}", from.short(), to.short());
        }
        for s in &rep.skipped {
            println!("snapshot {} is already in the destination", s.short());
        }
        println!(
            "{} blobs added ({} stored){}",
            rep.blobs_added,
            bytes(rep.bytes_added_stored),
            if rep.rechunked {
                "; data was re-chunked (the repositories chunk differently)"
            } else {
                ""
            }
        );
    }
    Ok(OK)
}
