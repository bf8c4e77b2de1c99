//! Finding the repository and its password from flags, environment and the terminal.

use std::io::IsTerminal;
use std::path::PathBuf;

use zenith_snapshot::Repository;
use zenith_snapshot::crypto::{KdfParams, Password};

use crate::env;
use crate::exit::usage;

/// The repository options every command shares.
#[derive(Clone, Debug, clap::Args)]
pub struct RepoArgs {
    /// Repository directory [env: ZENITH_REPO]
    #[arg(short = 'r', long = "repo", global = true)]
    pub repo: Option<PathBuf>,
    /// File whose first line is the password [env: ZENITH_PASSWORD_FILE]
    #[arg(long, global = true)]
    pub password_file: Option<PathBuf>,
    /// Wait this long for another process's lock (e.g. 30s, 5m).
    #[arg(long, global = true, value_parser = humantime_duration, default_value = "0s")]
    pub retry_lock: std::time::Duration,
}

pub fn humantime_duration(s: &str) -> Result<std::time::Duration, String> {
    s.parse::<jiff::SignedDuration>()
        .ok()
        .and_then(|d| d.try_into().ok())
        .or_else(|| {
            s.parse::<jiff::Span>()
                .ok()
                .and_then(|sp| sp.to_duration(jiff::SpanRelativeTo::days_are_24_hours()).ok())
                .and_then(|d| d.try_into().ok())
        })
        .ok_or_else(|| format!("{s:?} is not a duration (try 30s, 5m, 1h)"))
}

impl RepoArgs {
    /// Fill what the flags left open from the environment (an empty variable counts as unset).
    pub fn with_env(mut self) -> RepoArgs {
        if self.repo.is_none() {
            self.repo = env::var(env::ZENITH_REPO).map(PathBuf::from);
        }
        if self.password_file.is_none() {
            self.password_file = env::var(env::ZENITH_PASSWORD_FILE).map(PathBuf::from);
        }
        self
    }

    pub fn path(&self) -> anyhow::Result<PathBuf> {
        self.repo.clone().ok_or_else(|| {
            usage(format!(
                "no repository given: pass --repo DIR or set {}",
                env::ZENITH_REPO
            ))
        })
    }

    pub fn open(&self) -> anyhow::Result<Repository> {
        let path = self.path()?;
        if !path.join("config").exists() {
            return Err(zenith_snapshot::Error::NotARepository { path }.into());
        }
        let pw = password(
            env::ZENITH_PASSWORD,
            self.password_file.as_deref(),
            "repository password: ",
            false,
        )?;
        Ok(Repository::open(&path, &pw)?)
    }
}

/// The password from a variable, a file, or the terminal (asked twice when `confirm`).
pub fn password(var: &str, file: Option<&std::path::Path>, prompt: &str, confirm: bool) -> anyhow::Result<Password> {
    // A password file wins over the variable, so `--password-file` overrides the environment.
    if let Some(f) = file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| usage(format!("cannot read the password file {}: {e}", f.display())))?;
        let line = text.lines().next().unwrap_or_default().to_string();
        if line.is_empty() {
            return Err(usage(format!("the password file {} is empty", f.display())));
        }
        return Ok(Password::new(line));
    }
    if let Some(p) = env::var(var) {
        return Ok(Password::new(p));
    }
    if !std::io::stdin().is_terminal() {
        return Err(usage(format!(
            "no password: set {var} or {}, or run on a terminal to be asked",
            env::ZENITH_PASSWORD_FILE
        )));
    }
    let p = rpassword::prompt_password(prompt)?;
    if confirm && rpassword::prompt_password("again: ")? != p {
        return Err(usage("the passwords differ"));
    }
    if p.is_empty() {
        return Err(usage("an empty password is not allowed"));
    }
    Ok(Password::new(p))
}

/// The other repository's password (the copy destination, or the source of chunker
/// parameters): its own file or variable (the file wins), else `fallback`.
pub fn other_password(fallback: impl FnOnce() -> anyhow::Result<Password>) -> anyhow::Result<Password> {
    if let Some(f) = env::var(env::ZENITH_OTHER_PASSWORD_FILE) {
        return password("", Some(std::path::Path::new(&f)), "", false);
    }
    if env::var(env::ZENITH_OTHER_PASSWORD).is_some() {
        return password(env::ZENITH_OTHER_PASSWORD, None, "", false);
    }
    fallback()
}

/// Key derivation settings for new keys.
pub fn kdf() -> KdfParams {
    if env::flag(env::ZENITH_INSECURE_TEST_KDF, false) {
        KdfParams::insecure_for_tests()
    } else {
        KdfParams::default()
    }
}
