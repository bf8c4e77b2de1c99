//! Talking to the daemon: where it is (`--daemon`, `ZENITH_DAEMON_URL`, or the discovery file
//! the daemon writes in its data directory), which token to send (`ZENITH_TOKEN`,
//! `ZENITH_TOKEN_FILE`, or the admin token file when this user can read it), and turning its
//! JSON errors into failures with the right exit code.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::env;
use crate::exit::{self, Failure};

/// The daemon's data directory when none is given: `/var/lib/zenith` for root, else
/// `$XDG_STATE_HOME/zenith` or `~/.local/state/zenith`.
pub fn default_data_dir() -> PathBuf {
    if let Some(d) = env::var(env::ZENITH_DATA_DIR) {
        return PathBuf::from(d);
    }
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/zenith");
    }
    if let Some(x) = env::var("XDG_STATE_HOME") {
        return Path::new(&x).join("zenith");
    }
    let home = env::var("HOME").unwrap_or_else(|| "/tmp".into());
    Path::new(&home).join(".local/state/zenith")
}

/// How the CLI reaches the daemon (`--daemon` and `--data-dir` on the daemon commands).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DaemonArgs {
    /// The daemon's API address [env: ZENITH_DAEMON_URL; default: found in the data directory]
    #[arg(long, global = true, value_name = "URL")]
    pub daemon: Option<String>,
    /// The daemon's data directory [env: ZENITH_DATA_DIR]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl DaemonArgs {
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(default_data_dir)
    }
}

pub struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    pub fn connect(args: &DaemonArgs) -> Result<Client, Failure> {
        let dir = args.data_dir();
        let discovery: Option<serde_json::Value> = std::fs::read(dir.join("daemon.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let base = args
            .daemon
            .clone()
            .or_else(|| env::var(env::ZENITH_DAEMON_URL))
            .or_else(|| discovery.as_ref().and_then(|d| d["address"].as_str()).map(String::from))
            .ok_or_else(|| Failure {
                code: exit::NO_DAEMON,
                error: anyhow!(
                    "no zenith daemon found: {} has no daemon.json; start one with `zenith serve`, \
                     or pass --daemon URL / --data-dir DIR",
                    dir.display()
                ),
            })?;
        let token = match env::var(env::ZENITH_TOKEN) {
            Some(t) => Some(t),
            None => match env::var(env::ZENITH_TOKEN_FILE) {
                Some(f) => Some(read_token(Path::new(&f))?),
                None => read_token(&dir.join("admin.token")).ok(),
            },
        };
        Ok(Client::at(&base, token))
    }

    /// A client of the daemon at `base` with `token`, whatever the environment says (the demo
    /// talks to a daemon of its own).
    pub fn at(base: &str, token: Option<String>) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .build()
            .into();
        Client {
            base: base.trim_end_matches('/').to_string(),
            token,
            agent,
        }
    }

    /// Adds the token, when there is one.
    fn auth<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.token {
            Some(t) => req.header("Authorization", format!("Bearer {t}")),
            None => req,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        self.finish(path, self.auth(self.agent.get(self.url(path))).call())
    }

    pub fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, Failure> {
        self.finish(path, self.auth(self.agent.post(self.url(path))).send_json(body))
    }

    pub fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        self.finish(path, self.auth(self.agent.delete(self.url(path))).call())
    }

    /// A streaming GET (logs): the body as a reader.
    pub fn stream(&self, path: &str) -> Result<impl Read, Failure> {
        let resp = self
            .auth(self.agent.get(self.url(path)))
            .call()
            .map_err(|e| self.unreachable(e))?;
        if !resp.status().is_success() {
            return Err(self.error_of(resp));
        }
        Ok(resp.into_body().into_reader())
    }

    fn finish<T: DeserializeOwned>(
        &self,
        path: &str,
        resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, Failure> {
        let mut resp = resp.map_err(|e| self.unreachable(e))?;
        if !resp.status().is_success() {
            return Err(self.error_of(resp));
        }
        resp.body_mut()
            .read_json()
            .with_context(|| format!("the daemon's answer to {path} is not what this zenith expects"))
            .map_err(Failure::from)
    }

    fn unreachable(&self, e: ureq::Error) -> Failure {
        Failure {
            code: exit::NO_DAEMON,
            error: anyhow!(
                "cannot reach the zenith daemon at {}: {e} (is `zenith serve` running?)",
                self.base
            ),
        }
    }

    fn error_of(&self, mut resp: ureq::http::Response<ureq::Body>) -> Failure {
        let status = resp.status().as_u16();
        let message = resp
            .body_mut()
            .read_json::<serde_json::Value>()
            .ok()
            .and_then(|v| v["error"].as_str().map(String::from))
            .unwrap_or_else(|| format!("the daemon answered HTTP {status}"));
        let code = match status {
            401 | 403 => exit::DENIED,
            400 | 404 | 409 | 422 => exit::USAGE,
            _ => exit::PROBLEM,
        };
        let hint = if status == 401 && self.token.is_none() {
            " (no token found: set ZENITH_TOKEN or ZENITH_TOKEN_FILE)"
        } else {
            ""
        };
        Failure {
            code,
            error: anyhow!("{message}{hint}"),
        }
    }
}

fn read_token(path: &Path) -> Result<String, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| Failure {
        code: exit::USAGE,
        error: anyhow!("cannot read the token file {}: {e}", path.display()),
    })?;
    Ok(text.lines().next().unwrap_or("").trim().to_string())
}
