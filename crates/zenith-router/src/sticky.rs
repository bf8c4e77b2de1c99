//! Routing during a rollout: a tester's `X-Zenith-Version` header pins a request to one
//! revision, and a cookie keeps each client on the revision it was first drawn, so a user
//! does not flip between the old and the new version from one page to the next.
//!
//! Both exist only while the daemon has set pins; without them the plan holds no [`Table`]
//! and the request path reads neither header nor cookie. The table is compiled with the plan
//! (one consistent view per request) and holds what requests would otherwise rebuild: the
//! cookie name and each revision's `Set-Cookie`. Parsing reads header bytes in place.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::balance::BackendState;
use crate::config::Pins;

/// The header a tester sets to reach a revision: `canary`, `stable`, `r7` or `7`.
const VERSION: HeaderName = HeaderName::from_static("x-zenith-version");

/// The cookie name for a service: `zenith-` and the label with every character other than
/// `[A-Za-z0-9-]` replaced by `-` (`shop/web` gives `zenith-shop-web`), so the name is a
/// valid cookie token and two services on one domain do not share a cookie.
pub(crate) fn cookie_name(service: &str) -> String {
    let label = service
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' });
    "zenith-".chars().chain(label).collect()
}

/// How one request is routed; decided once, against the first plan the request sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Drawn by weight, as without pins.
    Draw,
    /// Drawn by weight, and the answer tells the client to stick to the revision it got.
    DrawAndStick,
    /// Pinned by the header or by the client's cookie to this revision.
    To(u64),
}

/// A backend for a request, and the `Set-Cookie` its answer needs.
pub(crate) type Picked<'a> = (&'a Arc<BackendState>, Option<&'a HeaderValue>);

/// One revision with replicas in the set.
struct Revision {
    revision: u64,
    members: Vec<Arc<BackendState>>,
    /// Named in the weights map, at any weight: its sticky clients stay, even at 0 (the last
    /// step of a rollout), while a revision dropped from the map loses them.
    weighted: bool,
    /// `Set-Cookie` for a client drawn to this revision.
    set_cookie: HeaderValue,
}

/// The pins compiled against one backend set and weights map.
pub(crate) struct Table {
    cookie: Box<[u8]>,
    stable: Option<u64>,
    canary: Option<u64>,
    sticky: bool,
    /// One entry per revision in the set; a handful, so a scan beats a map.
    revisions: Vec<Revision>,
}

impl Table {
    /// Without weights every replica is drawn, so every revision may keep its clients.
    pub(crate) fn build(
        pins: &Pins,
        cookie: &str,
        backends: &[Arc<BackendState>],
        weights: Option<&BTreeMap<u64, u32>>,
    ) -> Self {
        let mut revisions: Vec<Revision> = Vec::new();
        for backend in backends {
            let revision = backend.backend.revision;
            match revisions.iter_mut().find(|r| r.revision == revision) {
                Some(r) => r.members.push(Arc::clone(backend)),
                None => revisions.push(Revision {
                    revision,
                    members: vec![Arc::clone(backend)],
                    weighted: weights.is_none_or(|w| w.contains_key(&revision)),
                    set_cookie: set_cookie(cookie, revision),
                }),
            }
        }
        Self {
            cookie: cookie.as_bytes().into(),
            stable: pins.stable,
            canary: pins.canary,
            sticky: pins.sticky,
            revisions,
        }
    }

    /// The header wins over the cookie (a tester with a cookie still reaches the canary);
    /// either only counts when it names a revision that can serve, otherwise the request is
    /// drawn as if it had neither.
    pub(crate) fn route(&self, headers: &HeaderMap) -> Route {
        if let Some(value) = headers.get(&VERSION)
            && let Some(revision) = self.requested(value.as_bytes())
            && self.find(revision).is_some()
        {
            return Route::To(revision);
        }
        if !self.sticky {
            return Route::Draw;
        }
        let mut named = headers
            .get_all(header::COOKIE)
            .iter()
            .flat_map(|v| cookie_values(v.as_bytes(), &self.cookie))
            .filter_map(|v| v.strip_prefix(b"r").and_then(revision_number));
        match named.find(|r| self.find(*r).is_some_and(|r| r.weighted)) {
            Some(revision) => Route::To(revision),
            None => Route::DrawAndStick,
        }
    }

    /// The replicas of `revision`, empty when it has none in the set.
    pub(crate) fn members(&self, revision: u64) -> &[Arc<BackendState>] {
        self.find(revision).map_or(&[], |r| &r.members)
    }

    /// What to answer a client drawn to `revision`.
    pub(crate) fn set_cookie(&self, revision: u64) -> Option<&HeaderValue> {
        self.find(revision).map(|r| &r.set_cookie)
    }

    fn find(&self, revision: u64) -> Option<&Revision> {
        self.revisions.iter().find(|r| r.revision == revision)
    }

    /// The revision an `X-Zenith-Version` value asks for.
    fn requested(&self, value: &[u8]) -> Option<u64> {
        let value = value.trim_ascii();
        if value.eq_ignore_ascii_case(b"canary") {
            self.canary
        } else if value.eq_ignore_ascii_case(b"stable") {
            self.stable
        } else {
            let digits = value.strip_prefix(b"r").or_else(|| value.strip_prefix(b"R"));
            revision_number(digits.unwrap_or(value))
        }
    }
}

/// A session cookie (no `Max-Age`): a rollout lasts minutes to hours, and a client that comes
/// back after closing its browser may as well be drawn again.
fn set_cookie(cookie: &str, revision: u64) -> HeaderValue {
    let value = format!("{cookie}=r{revision}; Path=/; HttpOnly; SameSite=Lax");
    HeaderValue::try_from(value).expect("a cookie name of [A-Za-z0-9-] makes a header value")
}

/// Decimal digits only: `u64::from_str` would also take a sign.
fn revision_number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The values of every cookie called `name` in one `Cookie` header value, in order
/// (`a=1; name=v; b=2`, RFC 6265 §4.2.1), read leniently: whitespace around names and values
/// and double quotes around a value are dropped.
fn cookie_values<'a>(header: &'a [u8], name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    header.split(|b| *b == b';').filter_map(move |pair| {
        let eq = pair.iter().position(|b| *b == b'=')?;
        let (key, value) = (pair[..eq].trim_ascii(), pair[eq + 1..].trim_ascii());
        (key == name).then(|| unquote(value))
    })
}

fn unquote(value: &[u8]) -> &[u8] {
    match value {
        [b'"', inner @ .., b'"'] => inner,
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::balance::Plan;
    use crate::config::Backend;

    const PINS: Pins = Pins {
        stable: Some(1),
        canary: Some(2),
        sticky: true,
    };

    fn values<'a>(header: &'a str, name: &'a str) -> Vec<&'a [u8]> {
        cookie_values(header.as_bytes(), name.as_bytes()).collect()
    }

    #[test]
    fn cookie_is_found_among_others() {
        assert_eq!(values("a=1; zenith-x-web=r2; b=2", "zenith-x-web"), [b"r2"]);
        assert_eq!(values("zenith-x-web=r2", "zenith-x-web"), [b"r2"]);
        assert_eq!(values("a=1;zenith-x-web = r2 ;b=2", "zenith-x-web"), [b"r2"]);
        assert_eq!(values("zenith-x-web=\"r2\"", "zenith-x-web"), [b"r2"]);
        assert_eq!(
            values("zenith-x-web=r2; zenith-x-web=r3", "zenith-x-web"),
            [b"r2", b"r3"]
        );
    }

    #[test]
    fn similar_names_and_malformed_pairs_do_not_match() {
        let none: [&[u8]; 0] = [];
        assert_eq!(values("xzenith-x-web=r2; zenith-x-web-old=r3", "zenith-x-web"), none);
        assert_eq!(values("zenith-x-web; ; =r2; a=zenith-x-web", "zenith-x-web"), none);
        assert_eq!(values("Zenith-X-Web=r2", "zenith-x-web"), none);
        assert_eq!(values("", "zenith-x-web"), none);
        assert_eq!(values("zenith-x-web=", "zenith-x-web"), [b""]);
    }

    #[test]
    fn revision_numbers_are_plain_decimals() {
        assert_eq!(revision_number(b"7"), Some(7));
        assert_eq!(revision_number(b"0042"), Some(42));
        for bad in [&b""[..], b"+7", b"-7", b"7a", b" 7", b"99999999999999999999"] {
            assert_eq!(revision_number(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn cookie_name_keeps_only_token_characters() {
        assert_eq!(cookie_name("shop/web"), "zenith-shop-web");
        assert_eq!(cookie_name("a_b.c d-9"), "zenith-a-b-c-d-9");
        assert_eq!(cookie_name("café"), "zenith-caf-");
        assert_eq!(
            set_cookie("zenith-web", 7),
            "zenith-web=r7; Path=/; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn header_names_a_pin_or_a_revision() {
        let table = Table::build(&PINS, "zenith-web", &[], None);
        for (value, want) in [
            ("canary", Some(2)),
            ("Stable", Some(1)),
            ("r7", Some(7)),
            ("R7", Some(7)),
            ("7", Some(7)),
            ("r", None),
            ("v7", None),
            ("newest", None),
        ] {
            assert_eq!(table.requested(value.as_bytes()), want, "{value}");
        }
        let unpinned = Table::build(&Pins::default(), "zenith-web", &[], None);
        assert_eq!(unpinned.requested(b"canary"), None);
    }

    #[test]
    fn plan_routes_by_header_then_cookie_then_draw() {
        let state = |id: &str, revision| {
            let addr = ([127, 0, 0, 1], 1).into();
            let backend = Backend {
                id: id.into(),
                addr,
                revision,
            };
            Arc::new(BackendState::new(backend, Arc::default(), Duration::from_secs(60)))
        };
        let set = [state("s", 1), state("c", 2), state("x", 3)];
        let weights = BTreeMap::from([(1, 1), (2, 0)]);
        let plan = Plan::build(&set, Some(&weights)).with_pins(Some(&PINS), "z", Some(&weights));
        let route = |pairs: &[(&'static str, &'static str)]| {
            let pairs = pairs
                .iter()
                .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)));
            plan.route(&pairs.collect())
        };
        assert_eq!(route(&[("x-zenith-version", "canary")]), Route::To(2));
        assert_eq!(route(&[("x-zenith-version", "r3")]), Route::To(3));
        assert_eq!(route(&[("cookie", "z=r2"), ("x-zenith-version", "r9")]), Route::To(2));
        // Revision 3 has replicas but no place in the weights map: its cookie is stale.
        assert_eq!(route(&[("cookie", "z=r3; z=r1")]), Route::To(1));
        assert_eq!(route(&[("cookie", "z=r3")]), Route::DrawAndStick);

        let (backend, cookie) = plan.pick_routed(Route::To(2), 0, &[]).unwrap();
        assert_eq!((backend.backend.id.as_str(), cookie), ("c", None));
        let (backend, cookie) = plan.pick_routed(Route::To(2), 0, &set[1..2]).unwrap();
        assert_eq!(backend.backend.id, "s", "an excluded pin falls back, cookie {cookie:?}");
        let (backend, cookie) = plan.pick_routed(Route::DrawAndStick, 0, &[]).unwrap();
        assert_eq!(backend.backend.id, "s");
        assert_eq!(cookie.unwrap(), "z=r1; Path=/; HttpOnly; SameSite=Lax");

        let unpinned = Plan::build(&set, Some(&weights));
        assert_eq!(unpinned.route(&HeaderMap::new()), Route::Draw);
        let (_, cookie) = unpinned.pick_routed(Route::DrawAndStick, 0, &[]).unwrap();
        assert_eq!(cookie, None, "a route from an earlier plan with pins is drawn");
    }
}
