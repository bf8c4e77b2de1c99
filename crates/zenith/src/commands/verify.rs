//! `zenith snapshot verify`.

use clap::Args;
use zenith_snapshot::verify::{ReadData, verify};

use super::CmdResult;
use crate::exit::{OK, PROBLEM, usage};
use crate::output::{Out, bytes};
use crate::repo_open::RepoArgs;

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Snapshots whose trees to check (default: all).
    pub snapshots: Vec<String>,
    /// Check all snapshots (the default when none are named).
    #[arg(long, conflicts_with = "snapshots")]
    pub all: bool,
    /// Read and re-hash every byte of every pack.
    #[arg(long, conflicts_with = "read_data_subset")]
    pub read_data: bool,
    /// Read part of the packs: `n/t` (group n of t), `P%`, or a size like `500M`.
    #[arg(long, value_name = "SUBSET")]
    pub read_data_subset: Option<String>,
}

pub fn run(a: VerifyArgs, args: &RepoArgs, out: Out) -> CmdResult {
    let read = match (&a.read_data, &a.read_data_subset) {
        (true, _) => ReadData::All,
        (false, Some(s)) => s.parse::<ReadData>()?,
        _ => ReadData::None,
    };
    let repo = args.open()?;
    let ids = if a.snapshots.is_empty() {
        Vec::new()
    } else {
        let all = repo.snapshots()?;
        a.snapshots
            .iter()
            .map(|q| zenith_snapshot::snapshot::find(&all, q).map(|s| s.id))
            .collect::<Result<Vec<_>, _>>()?
    };
    if a.all && !a.snapshots.is_empty() {
        return Err(usage("give snapshot ids or --all, not both").into());
    }
    let bar = out.progress();
    let rep = verify(&repo, &ids, read, &bar)?;
    if out.json() {
        out.print_json(&rep)?;
    } else {
        for w in &rep.warnings {
            eprintln!("warning: {w}");
        }
        for e in &rep.errors {
            println!("DAMAGED {}: {}", e.object, e.detail);
            for f in &e.affects {
                println!("    breaks {f}");
            }
        }
        println!(
            "checked {} snapshots, {} trees, {} packs; read {} packs ({}), {} blobs",
            rep.snapshots,
            rep.trees,
            rep.packs,
            rep.packs_read,
            bytes(rep.bytes_read),
            rep.blobs_read
        );
        if rep.ok() {
            println!("no errors were found");
        } else {
            println!("{} errors found", rep.errors.len());
        }
    }
    Ok(if rep.ok() { OK } else { PROBLEM })
}
