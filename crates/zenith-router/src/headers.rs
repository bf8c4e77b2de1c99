//! Header rewriting between client and backend: hop-by-hop headers describe one TCP
//! connection and must not cross the proxy (RFC 9110 §7.6.1), while the backend needs to know
//! who the client was, which the `X-Forwarded-*` headers carry. An upgrade request is the one
//! case where `Connection: upgrade` and `Upgrade` must pass, since the backend has to agree
//! to the switch itself.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const HTTP: HeaderValue = HeaderValue::from_static("http");
const UPGRADE: HeaderValue = HeaderValue::from_static("upgrade");

/// Hop-by-hop headers that go whatever `Connection` says (`Upgrade` is decided apart).
const HOP_BY_HOP: [HeaderName; 7] = [
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
];

fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION || name == header::UPGRADE || HOP_BY_HOP.contains(name)
}

/// True when the message asks to switch protocols (`Connection: upgrade` plus `Upgrade`).
pub(crate) fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .any(|v| tokens(v).any(|t| t.eq_ignore_ascii_case("upgrade")))
}

fn tokens(value: &HeaderValue) -> impl Iterator<Item = &str> {
    value
        .to_str()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Removes hop-by-hop headers, including any the `Connection` header names. With `upgrade`,
/// the `Upgrade` header stays and `Connection: upgrade` is set again.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    // Most messages carry none of them: one pass over a handful of names (standard names
    // compare by tag) is cheaper than hashing each of the nine names below.
    if !headers.keys().any(is_hop_by_hop) {
        if upgrade {
            headers.insert(header::CONNECTION, UPGRADE);
        }
        return;
    }
    // Headers listed in `Connection` are hop-by-hop too; the common case has no such list,
    // so the lookup is all it costs.
    if let header::Entry::Occupied(entry) = headers.entry(header::CONNECTION) {
        let named: Vec<HeaderName> = entry
            .iter()
            .flat_map(tokens)
            .filter_map(|t| HeaderName::try_from(t).ok())
            .collect();
        entry.remove();
        for name in named {
            if !(upgrade && name == header::UPGRADE) {
                headers.remove(name);
            }
        }
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    if upgrade {
        headers.insert(header::CONNECTION, UPGRADE);
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// Prepares a client's request headers for the backend: hop-by-hop headers out, the client
/// address appended to `X-Forwarded-For` (the backend decides whom it trusts), and the
/// original scheme and host recorded. `client_ip` is rendered once per connection.
pub(crate) fn forward_request(headers: &mut HeaderMap, client_ip: &HeaderValue, upgrade: bool) {
    strip_hop_by_hop(headers, upgrade);
    let forwarded_for = match headers.get(&X_FORWARDED_FOR) {
        Some(prior) => {
            let mut joined = Vec::with_capacity(prior.len() + 2 + client_ip.len());
            joined.extend_from_slice(prior.as_bytes());
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(client_ip.as_bytes());
            HeaderValue::from_bytes(&joined).unwrap_or_else(|_| client_ip.clone())
        }
        None => client_ip.clone(),
    };
    headers.insert(X_FORWARDED_FOR, forwarded_for);
    headers.insert(X_FORWARDED_PROTO, HTTP);
    if let Some(host) = headers.get(header::HOST).cloned() {
        headers.insert(X_FORWARDED_HOST, host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (k, v) in pairs {
            headers.append(*k, HeaderValue::from_static(v));
        }
        headers
    }

    #[test]
    fn strips_standard_and_connection_listed_headers() {
        let mut h = map(&[
            ("connection", "keep-alive, x-hop"),
            ("keep-alive", "timeout=5"),
            ("x-hop", "1"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("x-end-to-end", "1"),
        ]);
        strip_hop_by_hop(&mut h, false);
        let left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-end-to-end"]);
    }

    #[test]
    fn upgrade_keeps_upgrade_and_connection() {
        let mut h = map(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        assert!(wants_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["connection"], "upgrade");
        assert_eq!(h["upgrade"], "websocket");
    }

    #[test]
    fn forwarded_headers_append_client() {
        let mut h = map(&[("host", "example.test"), ("x-forwarded-for", "10.0.0.1")]);
        forward_request(&mut h, &HeaderValue::from_static("127.0.0.1"), false);
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "example.test");
        assert!(!wants_upgrade(&h));
    }
}
