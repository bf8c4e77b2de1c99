//! A small blocking client for the OCI distribution API: blob existence, monolithic blob
//! uploads streamed from files, manifests up and down, and blob downloads checked against
//! their digest. It authenticates as docker does: anonymously first, then as each 401's
//! `WWW-Authenticate` asks (basic credentials, or a bearer token fetched from the realm).

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use ureq::http::Response;
use ureq::{Body, SendBody};
use zenith_snapshot::progress::Progress;

use crate::auth::{Challenge, Credentials, Secret, parse_challenge};
use crate::error::{Error, Result};
use crate::manifest::OCI_MANIFEST;
use crate::reference::Reference;

/// How to reach a registry.
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// Sent when the registry asks for them (never before).
    pub credentials: Option<Credentials>,
    /// Hosts spoken to in plain http besides the loopback ones (`host` or `host:port`).
    pub insecure: Vec<String>,
}

/// A connection to one repository of one registry.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    name: String,
    registry: String,
    credentials: Option<Credentials>,
    /// The `Authorization` value that last worked (basic credentials or a bearer token).
    auth: Option<Secret>,
}

/// Manifests larger than this are not zenith's.
const MAX_MANIFEST: u64 = 4 << 20;

impl Client {
    pub fn new(reference: &Reference, options: ClientOptions) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(300)))
            .user_agent(concat!("zenith/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Client {
            agent,
            base: reference.base_url(&options.insecure),
            name: reference.api_repository(),
            registry: reference.registry.clone(),
            credentials: options.credentials,
            auth: None,
        }
    }

    fn url(&self, tail: &str) -> String {
        format!("{}/v2/{}/{tail}", self.base, self.name)
    }

    /// True when the repository holds the blob.
    pub fn has_blob(&mut self, digest: &str) -> Result<bool> {
        let url = self.url(&format!("blobs/{digest}"));
        let agent = self.agent.clone();
        let resp = self.call("look up blobs", |auth| with_auth(agent.head(&url), auth).call())?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.refused("look up blobs", resp)),
        }
    }

    /// Upload a file as one blob (POST for an upload session, then one PUT with the digest).
    pub fn push_blob_file(&mut self, path: &Path, digest: &str, size: u64, progress: &dyn Progress) -> Result<()> {
        let url = with_digest(&self.start_upload()?, digest);
        let agent = self.agent.clone();
        let resp = self.call("store blobs", |auth| {
            let mut file = Counting {
                inner: fs_err::File::open(path)?,
                progress,
            };
            with_auth(agent.put(&url), auth)
                .header("Content-Type", "application/octet-stream")
                .header("Content-Length", size)
                .send(SendBody::from_reader(&mut file))
        })?;
        self.finish_upload(resp)
    }

    /// Upload a small blob held in memory.
    pub fn push_blob_bytes(&mut self, data: &[u8], digest: &str) -> Result<()> {
        let url = with_digest(&self.start_upload()?, digest);
        let agent = self.agent.clone();
        let resp = self.call("store blobs", |auth| {
            with_auth(agent.put(&url), auth)
                .header("Content-Type", "application/octet-stream")
                .send(data)
        })?;
        self.finish_upload(resp)
    }

    /// Open an upload session; returns the URL to PUT the blob to, without its digest.
    fn start_upload(&mut self) -> Result<String> {
        let url = self.url("blobs/uploads/");
        let agent = self.agent.clone();
        let resp = self.call("store blobs", |auth| with_auth(agent.post(&url), auth).send_empty())?;
        if resp.status().as_u16() != 202 {
            return Err(self.refused("store blobs", resp));
        }
        let location = header(&resp, "location").ok_or_else(|| Error::Protocol {
            registry: self.registry.clone(),
            action: "store blobs".into(),
            status: 202,
            message: "the upload answer has no Location header".into(),
        })?;
        Ok(if location.starts_with("http://") || location.starts_with("https://") {
            location
        } else if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            format!("{}/{location}", self.base)
        })
    }

    fn finish_upload(&mut self, resp: Response<Body>) -> Result<()> {
        if resp.status().as_u16() != 201 {
            return Err(self.refused("store blobs", resp));
        }
        Ok(())
    }

    /// Store a manifest under a tag; returns its digest.
    pub fn put_manifest(&mut self, tag: &str, manifest: &[u8]) -> Result<String> {
        let url = self.url(&format!("manifests/{tag}"));
        let agent = self.agent.clone();
        let resp = self.call("store the manifest", |auth| {
            with_auth(agent.put(&url), auth)
                .header("Content-Type", OCI_MANIFEST)
                .send(manifest)
        })?;
        if resp.status().as_u16() != 201 {
            return Err(self.refused("store the manifest", resp));
        }
        Ok(crate::manifest::digest_bytes(manifest))
    }

    /// A manifest's bytes and media type; `Error::NotFound` when the tag or repository is unknown.
    pub fn get_manifest(&mut self, reference: &Reference) -> Result<(Vec<u8>, String)> {
        let url = self.url(&format!("manifests/{}", reference.manifest_ref()));
        let agent = self.agent.clone();
        let accept = [
            OCI_MANIFEST,
            crate::manifest::OCI_INDEX,
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ]
        .join(", ");
        let mut resp = self.call("read the manifest", |auth| {
            with_auth(agent.get(&url), auth).header("Accept", &accept).call()
        })?;
        match resp.status().as_u16() {
            200 => {
                let media_type = header(&resp, "content-type").unwrap_or_default();
                let body = resp
                    .body_mut()
                    .with_config()
                    .limit(MAX_MANIFEST)
                    .read_to_vec()
                    .map_err(|e| self.unreachable(e))?;
                Ok((body, media_type))
            }
            404 => Err(Error::NotFound {
                reference: reference.to_string(),
                message: registry_message(resp),
            }),
            _ => Err(self.refused("read the manifest", resp)),
        }
    }

    /// Download a blob into `dest`, checking its size and sha256 digest as it arrives.
    pub fn fetch_blob(&mut self, digest: &str, size: u64, dest: &Path, progress: &dyn Progress) -> Result<()> {
        let url = self.url(&format!("blobs/{digest}"));
        let agent = self.agent.clone();
        let resp = self.call("read blobs", |auth| with_auth(agent.get(&url), auth).call())?;
        if resp.status().as_u16() != 200 {
            return Err(self.refused("read blobs", resp));
        }
        let mismatch = |detail: String| Error::DigestMismatch {
            digest: digest.to_string(),
            detail,
        };
        let mut body = resp.into_body().into_reader();
        let mut out = fs_err::File::create(dest)?;
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0u64;
        loop {
            let n = body.read(&mut buf).map_err(|e| self.unreachable(e))?;
            if n == 0 {
                break;
            }
            got += n as u64;
            if got > size {
                return Err(mismatch(format!("more than the {size} bytes announced")));
            }
            ctx.update(&buf[..n]);
            out.write_all(&buf[..n])?;
            progress.inc(n as u64);
        }
        if got != size {
            return Err(mismatch(format!("{got} bytes instead of {size}")));
        }
        let actual = format!("sha256:{}", hex::encode(ctx.finish()));
        if actual != digest {
            return Err(mismatch(format!("the content hashes to {actual}")));
        }
        out.sync_all()?;
        Ok(())
    }

    /// Send a request, answering one 401 by authenticating as its challenge asks and sending
    /// it again. `send` gets the `Authorization` value to use, if any.
    fn call(
        &mut self,
        action: &str,
        mut send: impl FnMut(Option<&str>) -> Result<Response<Body>, ureq::Error>,
    ) -> Result<Response<Body>> {
        let resp = send(self.auth.as_ref().map(Secret::expose)).map_err(|e| self.unreachable(e))?;
        if resp.status().as_u16() != 401 {
            return Ok(resp);
        }
        let challenge = header(&resp, "www-authenticate").and_then(|h| parse_challenge(&h));
        let Some(challenge) = challenge else {
            return Err(self.refused(action, resp));
        };
        let sent_credentials = self.auth.is_some() && challenge == Challenge::Basic;
        if sent_credentials || (self.credentials.is_none() && challenge == Challenge::Basic) {
            return Err(Error::Unauthorized {
                registry: self.registry.clone(),
                message: registry_message(resp),
            });
        }
        self.auth = Some(self.authenticate(&challenge)?);
        let resp = send(self.auth.as_ref().map(Secret::expose)).map_err(|e| self.unreachable(e))?;
        if resp.status().as_u16() == 401 {
            return Err(Error::Unauthorized {
                registry: self.registry.clone(),
                message: registry_message(resp),
            });
        }
        Ok(resp)
    }

    /// The `Authorization` value a challenge asks for.
    fn authenticate(&self, challenge: &Challenge) -> Result<Secret> {
        let Challenge::Bearer { realm, service, scope } = challenge else {
            return Ok(self
                .credentials
                .as_ref()
                .map(Credentials::basic_header)
                .expect("checked by the caller"));
        };
        let mut req = self.agent.get(realm);
        if let Some(s) = service {
            req = req.query("service", s);
        }
        if let Some(s) = scope {
            req = req.query("scope", s);
        }
        if let Some(c) = &self.credentials {
            req = req.header("Authorization", c.basic_header().expose());
        }
        let mut resp = req.call().map_err(|e| self.unreachable(e))?;
        match resp.status().as_u16() {
            200 => {}
            401 | 403 => {
                return Err(Error::Unauthorized {
                    registry: self.registry.clone(),
                    message: registry_message(resp),
                });
            }
            _ => return Err(self.refused("issue a token", resp)),
        }
        let body: serde_json::Value = resp.body_mut().read_json().map_err(|e| self.unreachable(e))?;
        let token = body
            .get("token")
            .or_else(|| body.get("access_token"))
            .and_then(|t| t.as_str())
            .ok_or_else(|| Error::Protocol {
                registry: self.registry.clone(),
                action: "issue a token".into(),
                status: 200,
                message: "the token answer holds no token".into(),
            })?;
        Ok(Secret::new(format!("Bearer {token}")))
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> Error {
        Error::Unreachable {
            registry: self.registry.clone(),
            detail: e.to_string(),
        }
    }

    /// The error for an answer that is not the one expected, with the registry's own words.
    fn refused(&self, action: &str, resp: Response<Body>) -> Error {
        let status = resp.status().as_u16();
        let registry = self.registry.clone();
        let action = action.to_string();
        let message = registry_message(resp);
        match status {
            401 => Error::Unauthorized { registry, message },
            403 | 405 => Error::Denied {
                registry,
                action,
                status,
                message,
            },
            _ => Error::Protocol {
                registry,
                action,
                status,
                message,
            },
        }
    }
}

fn with_auth<B>(req: ureq::RequestBuilder<B>, auth: Option<&str>) -> ureq::RequestBuilder<B> {
    match auth {
        Some(a) => req.header("Authorization", a),
        None => req,
    }
}

/// The upload URL with the blob's digest added to its query.
fn with_digest(location: &str, digest: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={}", digest.replace(':', "%3A"))
}

fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers().get(name)?.to_str().ok().map(str::to_string)
}

/// The registry's explanation: `CODE: message` of each entry of its `errors` array, else the
/// start of its body, else the status line.
fn registry_message(mut resp: Response<Body>) -> String {
    let status = resp.status();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 << 10)
        .read_to_string()
        .unwrap_or_default();
    let parsed: Option<Vec<String>> = serde_json::from_str::<serde_json::Value>(&body).ok().and_then(|v| {
        let errors = v.get("errors")?.as_array()?;
        Some(
            errors
                .iter()
                .map(|e| {
                    let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("ERROR");
                    let msg = e.get("message").and_then(|m| m.as_str()).unwrap_or("");
                    format!("{code}: {msg}")
                })
                .collect(),
        )
    });
    match parsed {
        Some(list) if !list.is_empty() => list.join("; "),
        _ if !body.trim().is_empty() => body.trim().chars().take(200).collect(),
        _ => status.to_string(),
    }
}

/// Counts bytes read into the progress display.
struct Counting<'p, R> {
    inner: R,
    progress: &'p dyn Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.inc(n as u64);
        Ok(n)
    }
}
