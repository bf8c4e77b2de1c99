//! `zenith logs`, `zenith token …` and `zenith audit`.

use std::io::{Read, Write};

use clap::{Args, Subcommand};
use serde_json::json;
use zenith_server::api::admin::CreatedToken;
use zenith_server::auth::TokenInfo;
use zenith_server::store::AuditRecord;

use super::CmdResult;
use crate::client::{Client, DaemonArgs};
use crate::exit;
use crate::output::Out;

#[derive(Args, Debug)]
pub struct LogsArgs {
    app: String,
    /// Only this service's replicas.
    #[arg(long)]
    service: Option<String>,
    /// Lines of each replica log to show first.
    #[arg(short = 'n', long, default_value_t = 100)]
    lines: usize,
    /// Keep printing new lines until interrupted.
    #[arg(short, long)]
    follow: bool,
}

pub fn logs(args: LogsArgs, daemon: &DaemonArgs) -> CmdResult {
    let client = Client::connect(daemon)?;
    let mut path = format!("/v1/apps/{}/logs?lines={}&follow={}", args.app, args.lines, args.follow);
    if let Some(s) = &args.service {
        path.push_str(&format!("&service={s}"));
    }
    let mut body = client.stream(&path)?;
    let mut buf = [0u8; 8192];
    let mut stdout = std::io::stdout();
    loop {
        let n = body.read(&mut buf).map_err(anyhow::Error::from)?;
        if n == 0 {
            return Ok(exit::OK);
        }
        stdout.write_all(&buf[..n]).map_err(anyhow::Error::from)?;
        stdout.flush().map_err(anyhow::Error::from)?;
    }
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token; its secret is printed once.
    Create {
        /// A name for the token (default: the role and a random suffix).
        name: Option<String>,
        /// admin (everything), deployer (deploy, rollback, promote, abort) or viewer (read).
        #[arg(long)]
        role: String,
    },
    /// The tokens, without their secrets.
    List,
    /// Revoke a token by name.
    Revoke { name: String },
}

pub fn token(cmd: TokenCommand, daemon: &DaemonArgs, out: Out) -> CmdResult {
    let client = Client::connect(daemon)?;
    match cmd {
        TokenCommand::Create { name, role } => {
            let name = name.unwrap_or_else(|| {
                let mut b = [0u8; 2];
                let _ = getrandom::fill(&mut b);
                format!("{role}-{:02x}{:02x}", b[0], b[1])
            });
            let created: CreatedToken = client.post("/v1/tokens", &json!({ "name": name, "role": role }))?;
            if out.json() {
                out.print_json(&created)?;
            } else {
                println!("{}", created.secret);
                out.note(format!(
                    "token {} ({}) created; the secret above is shown once only",
                    created.token.name,
                    created.token.role.as_str()
                ));
            }
        }
        TokenCommand::List => {
            let tokens: Vec<TokenInfo> = client.get("/v1/tokens")?;
            if out.json() {
                out.print_json(&tokens)?;
            } else {
                let mut t = comfy_table::Table::new();
                t.load_preset(comfy_table::presets::NOTHING);
                t.set_header(vec!["NAME", "ROLE", "CREATED", "LAST USED"]);
                for tok in tokens {
                    t.add_row(vec![
                        tok.name,
                        tok.role.as_str().to_string(),
                        tok.created_at.strftime("%Y-%m-%d %H:%M:%S").to_string(),
                        tok.last_used_at
                            .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
                            .unwrap_or_default(),
                    ]);
                }
                println!("{t}");
            }
        }
        TokenCommand::Revoke { name } => {
            let _: serde_json::Value = client.delete(&format!("/v1/tokens/{name}"))?;
            out.note(format!("token {name} revoked"));
        }
    }
    Ok(exit::OK)
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Only entries about this app.
    #[arg(long)]
    app: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

pub fn audit(args: AuditArgs, daemon: &DaemonArgs, out: Out) -> CmdResult {
    let client = Client::connect(daemon)?;
    let mut path = format!("/v1/audit?limit={}", args.limit);
    if let Some(a) = &args.app {
        path.push_str(&format!("&app={a}"));
    }
    let entries: Vec<AuditRecord> = client.get(&path)?;
    if out.json() {
        out.print_json(&entries)?;
        return Ok(exit::OK);
    }
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t.set_header(vec!["#", "TIME", "WHO", "ACTION", "TARGET", "RESULT", "DETAIL"]);
    for r in entries {
        let e = r.entry;
        t.add_row(vec![
            r.seq.to_string(),
            e.time.strftime("%Y-%m-%d %H:%M:%S").to_string(),
            match (e.actor, e.role) {
                (Some(a), Some(role)) => format!("{a} ({})", role.as_str()),
                (Some(a), None) => a,
                _ => "(no valid token)".into(),
            },
            e.action,
            e.target,
            e.result.as_str().to_string(),
            e.detail,
        ]);
    }
    println!("{t}");
    Ok(exit::OK)
}
