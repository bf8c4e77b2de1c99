//! Registry credentials and the `WWW-Authenticate` challenges that ask for them. Secrets are
//! kept in [`Secret`], whose `Debug` and `Display` never show them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use zeroize::Zeroizing;

/// A password or token: printed as `**REDACTED**`, wiped from memory when dropped.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(Zeroizing::new(s.into()))
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("**REDACTED**")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("**REDACTED**")
    }
}

/// A user name and password for a registry (or its token service).
#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

impl Credentials {
    /// The value of an `Authorization: Basic …` header.
    pub fn basic_header(&self) -> Secret {
        let raw = Zeroizing::new(format!("{}:{}", self.username, self.password.expose()));
        Secret::new(format!("Basic {}", BASE64.encode(raw.as_bytes())))
    }
}

/// What a registry's 401 answer asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// Send the user name and password with every request.
    Basic,
    /// Fetch a token from `realm` (for `service` and `scope`) and send it as a bearer token.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parse a `WWW-Authenticate` header value; `None` for schemes zenith does not speak.
///
/// ```
/// use zenith_oci::auth::{Challenge, parse_challenge};
/// let c = parse_challenge(r#"Bearer realm="https://auth.example/token",scope="repository:a:pull,push""#);
/// assert_eq!(c, Some(Challenge::Bearer {
///     realm: "https://auth.example/token".into(),
///     service: None,
///     scope: Some("repository:a:pull,push".into()),
/// }));
/// ```
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(char::is_whitespace).unwrap_or((header, ""));
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        })
    } else {
        None
    }
}

/// `key=value` pairs separated by commas; values may be quoted (with `\` escapes) and then
/// hold commas themselves, as scopes like `repository:a:pull,push` do.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let key = key.trim().to_string();
        if key.is_empty() {
            return out;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                value.push(c);
            }
            value = value.trim().to_string();
        }
        out.push((key, value));
    }
}

/// The credentials docker's `config.json` (the text given) holds for `registry`
/// (`auths[registry].auth`, base64 of `user:password`); `None` when it has none.
/// Credential helpers (`credsStore`, `credHelpers`) are not consulted.
pub fn from_docker_config(config_json: &str, registry: &str) -> Option<Credentials> {
    let config: serde_json::Value = serde_json::from_str(config_json).ok()?;
    let auths = config.get("auths")?.as_object()?;
    let wanted: &[&str] = match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => {
            &["index.docker.io", "docker.io", "registry-1.docker.io"]
        }
        other => &[other],
    };
    let (_, entry) = auths.iter().find(|(key, _)| {
        let host = key
            .strip_prefix("https://")
            .or_else(|| key.strip_prefix("http://"))
            .unwrap_or(key);
        let host = host.split('/').next().unwrap_or(host);
        wanted.contains(&host)
    })?;
    let decoded = Zeroizing::new(BASE64.decode(entry.get("auth")?.as_str()?.trim()).ok()?);
    let text = std::str::from_utf8(&decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some(Credentials {
        username: user.to_string(),
        password: Secret::new(pass),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_challenges_registries_send() {
        let bearer = |realm: &str, service: Option<&str>, scope: Option<&str>| {
            Some(Challenge::Bearer {
                realm: realm.into(),
                service: service.map(Into::into),
                scope: scope.map(Into::into),
            })
        };
        let table = [
            (r#"Basic realm="Registry Realm""#, Some(Challenge::Basic)),
            ("basic", Some(Challenge::Basic)),
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
                bearer(
                    "https://auth.docker.io/token",
                    Some("registry.docker.io"),
                    Some("repository:samalba/my-app:pull,push"),
                ),
            ),
            (
                r#"bearer Realm = "https://ghcr.io/token" , service=ghcr.io, scope="repository:o/r:pull""#,
                bearer("https://ghcr.io/token", Some("ghcr.io"), Some("repository:o/r:pull")),
            ),
            (
                r#"Bearer realm="https://a/t\"x",error="insufficient_scope""#,
                bearer("https://a/t\"x", None, None),
            ),
            (r#"Bearer service="no-realm""#, None),
            (r#"Negotiate abc"#, None),
            ("", None),
        ];
        for (header, want) in table {
            assert_eq!(parse_challenge(header), want, "{header}");
        }
    }

    #[test]
    fn reads_docker_config_auths() {
        let auth = BASE64.encode("alice:s3:cr=t");
        let json = format!(
            r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{auth}"}}, "localhost:5000": {{"auth": "{auth}"}}, "bad.example": {{"auth": "!!"}}}}}}"#
        );
        let c = from_docker_config(&json, "localhost:5000").unwrap();
        assert_eq!((c.username.as_str(), c.password.expose()), ("alice", "s3:cr=t"));
        assert!(from_docker_config(&json, "docker.io").is_some());
        assert!(from_docker_config(&json, "localhost:5001").is_none());
        assert!(from_docker_config(&json, "bad.example").is_none());
        assert!(from_docker_config("not json", "localhost:5000").is_none());
    }

    #[test]
    fn secrets_never_print() {
        let c = Credentials {
            username: "alice".into(),
            password: Secret::new("hunter2"),
        };
        let shown = format!("{c:?} {} {:?}", c.password, c.basic_header());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("**REDACTED**"), "{shown}");
        assert_eq!(
            c.basic_header().expose(),
            format!("Basic {}", BASE64.encode("alice:hunter2"))
        );
    }
}
