//! `zenith repo`: init, keys, locks and index repair.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;
use zenith_snapshot::Repository;
use zenith_snapshot::chunker::ChunkerParams;
use zenith_snapshot::repo::InitOptions;

use super::CmdResult;
use crate::env;
use crate::exit::OK;
use crate::output::{Out, local_time, table};
use crate::repo_open::{RepoArgs, kdf, other_password, password};

#[derive(Subcommand, Debug)]
pub enum RepoCommand {
    /// Create a repository.
    Init {
        /// zstd level for new data, 0 to store it uncompressed.
        #[arg(long, default_value_t = 1)]
        compression: i32,
        /// Cut and name data as this other repository does, so `snapshot copy` between the
        /// two moves blobs without re-chunking (its password: ZENITH_OTHER_PASSWORD, or the same).
        #[arg(long, value_name = "REPO", conflicts_with = "chunk_size")]
        copy_chunker_params: Option<PathBuf>,
        /// Average chunk size, a power of two from 4KiB to 1MiB (default 64KiB; chunks range
        /// from a quarter to four times it). Smaller chunks store less again when a large
        /// file changes in scattered places (databases, disk images), at the price of a
        /// larger index.
        #[arg(long, value_name = "SIZE")]
        chunk_size: Option<bytesize::ByteSize>,
        /// Target size of pack files in MiB (1–1024). Larger packs mean fewer files.
        #[arg(long, default_value_t = 16, value_name = "MIB")]
        pack_size: u32,
    },
    /// Manage the keys (passwords) that open the repository.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Remove stale locks (those of dead processes or not refreshed for 30 minutes).
    Unlock {
        /// Remove every lock, even live ones. Only when you know no zenith is running.
        #[arg(long)]
        remove_all: bool,
    },
    /// Rebuild the index from the pack files (after index files were lost or damaged).
    RebuildIndex,
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Add a key; its password comes from ZENITH_NEW_PASSWORD(_FILE) or a prompt.
    Add,
    /// List the keys.
    List,
    /// Remove a key by id (or unique prefix).
    Remove { id: String },
    /// Change the password of the key in use.
    Passwd,
}

pub fn run(cmd: RepoCommand, args: &RepoArgs, out: Out) -> CmdResult {
    match cmd {
        RepoCommand::Init {
            compression,
            copy_chunker_params,
            chunk_size,
            pack_size,
        } => {
            if !(1..=1024).contains(&pack_size) {
                return Err(crate::exit::usage("--pack-size takes 1 to 1024 (MiB)").into());
            }
            let chunker = match chunk_size {
                Some(size) => ChunkerParams::with_average(size.as_u64())
                    .map_err(|e| crate::exit::usage(format!("--chunk-size {size}: {e}")))?,
                None => ChunkerParams::default(),
            };
            let path = args.path()?;
            let pw = password(
                env::ZENITH_PASSWORD,
                args.password_file.as_deref(),
                "new repository password: ",
                true,
            )?;
            let other = match &copy_chunker_params {
                Some(p) => {
                    let opw = other_password(|| Ok(pw.clone()))?;
                    Some(Repository::open(p, &opw)?)
                }
                None => None,
            };
            let opts = InitOptions {
                compression,
                pack_size: pack_size << 20,
                kdf: kdf(),
                chunker,
            };
            let repo = Repository::init(&path, &pw, &opts, other.as_ref())?;
            if out.json() {
                out.print_json(&json!({"id": repo.config().id, "path": path, "config": repo.config()}))?;
            } else {
                println!("created repository {} at {}", repo.config().id.short(), path.display());
                out.note("keep the password safe: without it the data cannot be read back");
            }
        }
        RepoCommand::Key(k) => {
            let mut repo = args.open()?;
            match k {
                KeyCommand::Add => {
                    let new = new_password()?;
                    let id = repo.add_key(&new, kdf())?;
                    report_key(out, "added", &id)?;
                }
                KeyCommand::List => {
                    let keys = repo.list_keys()?;
                    if out.json() {
                        out.print_json(&keys)?;
                    } else {
                        let mut t = table(&["", "id", "user", "host", "created"]);
                        for k in keys {
                            t.add_row(vec![
                                if k.current { "*" } else { "" }.to_string(),
                                k.id[..8].to_string(),
                                k.username,
                                k.host,
                                local_time(k.created),
                            ]);
                        }
                        println!("{t}");
                    }
                }
                KeyCommand::Remove { id } => {
                    let removed = repo.remove_key(&id)?;
                    report_key(out, "removed", &removed)?;
                }
                KeyCommand::Passwd => {
                    let new = new_password()?;
                    let id = repo.change_password(&new, kdf())?;
                    report_key(out, "password changed; new", &id)?;
                }
            }
        }
        RepoCommand::Unlock { remove_all } => {
            let path = args.path()?;
            let backend = zenith_snapshot::backend::LocalBackend::new(&path);
            if !backend.config_path().exists() {
                return Err(zenith_snapshot::Error::NotARepository { path }.into());
            }
            let removed = zenith_snapshot::lock::remove_locks(&backend, remove_all)?;
            if out.json() {
                out.print_json(&json!({"removed": removed}))?;
            } else if removed.is_empty() {
                println!("no stale locks");
            } else {
                for r in removed {
                    println!("removed {r}");
                }
            }
        }
        RepoCommand::RebuildIndex => {
            let repo = args.open()?;
            let bar = out.progress();
            let n = zenith_snapshot::prune::rebuild_index(&repo, args.retry_lock, &bar)?;
            if out.json() {
                out.print_json(&json!({"packs": n}))?;
            } else {
                println!("index rebuilt from {n} packs");
            }
        }
    }
    Ok(OK)
}

fn new_password() -> anyhow::Result<zenith_snapshot::crypto::Password> {
    let file = env::var(env::ZENITH_NEW_PASSWORD_FILE).map(PathBuf::from);
    password(env::ZENITH_NEW_PASSWORD, file.as_deref(), "new password: ", true)
}

fn report_key(out: Out, what: &str, id: &str) -> anyhow::Result<()> {
    if out.json() {
        out.print_json(&json!({"key": id}))?;
    } else {
        println!("{what} key {}", &id[..8.min(id.len())]);
    }
    Ok(())
}
