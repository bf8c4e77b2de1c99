//! Registry references as users write them, `HOST[:PORT]/REPOSITORY[:TAG]` or
//! `HOST[:PORT]/REPOSITORY@sha256:HEX`, and the base URL each one is reached at.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// The tag used when a reference names none.
pub const DEFAULT_TAG: &str = "latest";

/// A parsed reference to a manifest in a registry.
///
/// ```
/// let r: zenith_oci::Reference = "localhost:5000/team/state".parse().unwrap();
/// assert_eq!((r.registry.as_str(), r.repository.as_str(), r.tag.as_str()), ("localhost:5000", "team/state", "latest"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]` as written.
    pub registry: String,
    /// The repository path, e.g. `team/state`.
    pub repository: String,
    /// The tag (`latest` when none was given).
    pub tag: String,
    /// `sha256:…` when the reference pins a manifest digest.
    pub digest: Option<String>,
}

impl Reference {
    /// What goes after `/manifests/`: the digest when pinned, else the tag.
    pub fn manifest_ref(&self) -> &str {
        self.digest.as_deref().unwrap_or(&self.tag)
    }

    /// The host without its port (brackets kept for IPv6).
    pub fn host(&self) -> &str {
        match self.registry.rfind(':') {
            Some(i) if !self.registry[i..].contains(']') => &self.registry[..i],
            _ => &self.registry,
        }
    }

    /// True when the registry is spoken to in plain http: loopback hosts, as docker does for
    /// local registries, and hosts (`host` or `host:port`) listed in `insecure`.
    pub fn is_insecure(&self, insecure: &[String]) -> bool {
        matches!(self.host(), "localhost" | "127.0.0.1" | "[::1]")
            || insecure
                .iter()
                .map(|h| h.trim())
                .any(|h| h == self.registry || h == self.host())
    }

    /// `http(s)://host[:port]` of the registry's API (Docker Hub's is `registry-1.docker.io`).
    pub fn base_url(&self, insecure: &[String]) -> String {
        let scheme = if self.is_insecure(insecure) { "http" } else { "https" };
        let host = match self.registry.as_str() {
            "docker.io" | "index.docker.io" => "registry-1.docker.io",
            other => other,
        };
        format!("{scheme}://{host}")
    }

    /// The repository path as the API wants it (Docker Hub's official images live under `library/`).
    pub fn api_repository(&self) -> String {
        if matches!(self.registry.as_str(), "docker.io" | "index.docker.io") && !self.repository.contains('/') {
            format!("library/{}", self.repository)
        } else {
            self.repository.clone()
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.digest {
            Some(d) => write!(f, "{}/{}@{d}", self.registry, self.repository),
            None => write!(f, "{}/{}:{}", self.registry, self.repository, self.tag),
        }
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Reference, Error> {
        let bad = |reason: &str| Error::InvalidReference {
            reference: s.to_string(),
            reason: reason.to_string(),
        };
        if s.contains("://") {
            return Err(bad("leave out the scheme; zenith picks http or https by itself"));
        }
        let (registry, rest) = s.split_once('/').ok_or_else(|| bad("no repository after the host"))?;
        let looks_like_host = registry.contains('.') || registry.contains(':') || registry == "localhost";
        if !looks_like_host {
            return Err(bad(
                "the first part must be a registry host (with a dot or a port, or `localhost`)",
            ));
        }
        if !valid_registry(registry) {
            return Err(bad(
                "the registry host is not a host name, an IP address or [IPv6] with an optional port",
            ));
        }
        let (path, digest) = match rest.split_once('@') {
            Some((p, d)) => (p, Some(d)),
            None => (rest, None),
        };
        // A tag follows the last `:` after the last `/`.
        let last = path.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match path[last..].find(':') {
            Some(i) => (&path[..last + i], Some(&path[last + i + 1..])),
            None => (path, None),
        };
        if !valid_repository(repository) {
            return Err(bad(
                "the repository must be lowercase letters, digits and `._-` separated by `/`",
            ));
        }
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(bad(
                "a tag is 1 to 128 of letters, digits and `._-`, not starting with `.` or `-`",
            ));
        }
        if let Some(d) = digest
            && !valid_digest(d)
        {
            return Err(bad("a digest is sha256: followed by 64 lowercase hex digits"));
        }
        Ok(Reference {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag: tag.unwrap_or(DEFAULT_TAG).to_string(),
            digest: digest.map(str::to_string),
        })
    }
}

fn valid_registry(r: &str) -> bool {
    let valid_port = |p: &str| p.parse::<u16>().is_ok_and(|n| n > 0);
    if let Some(rest) = r.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        let v6_ok = !v6.is_empty() && v6.chars().all(|c| c.is_ascii_hexdigit() || c == ':');
        return v6_ok && (after.is_empty() || after.strip_prefix(':').is_some_and(valid_port));
    }
    let (host, port) = match r.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (r, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    host_ok && port.is_none_or(valid_port)
}

fn valid_repository(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 255
        && r.split('/').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-'))
        })
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    (1..=128).contains(&b.len())
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// True for `sha256:` and 64 lowercase hex digits, the only digest zenith writes or accepts.
pub fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> (String, String, String, Option<String>) {
        let r: Reference = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
        (r.registry, r.repository, r.tag, r.digest)
    }

    #[test]
    fn parses_hosts_ports_paths_tags_and_digests() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let table = [
            ("localhost:5000/state", ("localhost:5000", "state", "latest", None)),
            ("localhost/state:v1", ("localhost", "state", "v1", None)),
            (
                "registry.example.com/team/app/state:2025-04-03",
                ("registry.example.com", "team/app/state", "2025-04-03", None),
            ),
            (
                "127.0.0.1:41234/a.b_c-d/e:_x",
                ("127.0.0.1:41234", "a.b_c-d/e", "_x", None),
            ),
            ("[::1]:5000/s:t", ("[::1]:5000", "s", "t", None)),
        ];
        for (input, (reg, repo, tag, digest)) in table {
            assert_eq!(parse(input), (reg.into(), repo.into(), tag.into(), digest), "{input}");
        }
        let pinned = parse(&format!("ghcr.io/o/r@{d}"));
        assert_eq!(
            pinned,
            ("ghcr.io".into(), "o/r".into(), "latest".into(), Some(d.clone()))
        );
        let r: Reference = format!("ghcr.io/o/r@{d}").parse().unwrap();
        assert_eq!(r.manifest_ref(), d);
        assert_eq!(r.to_string(), format!("ghcr.io/o/r@{d}"));
        let r: Reference = "ghcr.io/o/r".parse().unwrap();
        assert_eq!(
            (r.manifest_ref(), r.to_string().as_str()),
            ("latest", "ghcr.io/o/r:latest")
        );
    }

    #[test]
    fn refuses_what_is_not_a_reference() {
        for bad in [
            "state",
            "state:v1",
            "ubuntu/state",
            "http://localhost:5000/state",
            "localhost:5000/",
            "localhost:5000/State",
            "localhost:5000/a//b",
            "localhost:5000/-a",
            "localhost:5000/a:",
            "localhost:5000/a:-t",
            "localhost:5000/a:t/b",
            "localhost:99999/a",
            "localhost:5000/a@sha256:abc",
            "localhost:5000/a@md5:00",
            "exa mple.com/a",
            "[zz]:5000/a",
        ] {
            let err = bad.parse::<Reference>().expect_err(bad);
            assert!(err.to_string().contains("HOST[:PORT]/REPOSITORY[:TAG]"), "{bad}: {err}");
        }
    }

    #[test]
    fn loopback_and_listed_hosts_use_plain_http() {
        let url = |s: &str, insecure: &[&str]| {
            let r: Reference = s.parse().unwrap();
            let list: Vec<String> = insecure.iter().map(|s| s.to_string()).collect();
            r.base_url(&list)
        };
        assert_eq!(url("localhost:5000/a", &[]), "http://localhost:5000");
        assert_eq!(url("127.0.0.1:5000/a", &[]), "http://127.0.0.1:5000");
        assert_eq!(url("[::1]:5000/a", &[]), "http://[::1]:5000");
        assert_eq!(url("registry.lan:5000/a", &[]), "https://registry.lan:5000");
        assert_eq!(
            url("registry.lan:5000/a", &["registry.lan"]),
            "http://registry.lan:5000"
        );
        assert_eq!(
            url("registry.lan:5000/a", &[" registry.lan:5000"]),
            "http://registry.lan:5000"
        );
        assert_eq!(
            url("registry.lan:5000/a", &["registry.lan:6000"]),
            "https://registry.lan:5000"
        );
        assert_eq!(url("docker.io/a", &[]), "https://registry-1.docker.io");
        let hub: Reference = "docker.io/state".parse().unwrap();
        assert_eq!(hub.api_repository(), "library/state");
    }
}
