//! Sticky sessions during a rollout: new clients are drawn by weight and told their revision
//! in a cookie, returning clients stay on it through every weight change, and a cookie for a
//! revision that is gone, or that cannot answer, never costs the client an error. Also home
//! to the rollout fixture and the header-aware client that `pin_header` shares.

use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tokio::task::JoinSet;
use zenith_router::{Pins, Router};

use crate::common::{TestBackend, TestClient, client, full, router_for, weights};

/// A router for `service` over a stable backend `s` (revision 1) and a canary `c`
/// (revision 2), with these weights and pins naming both.
pub struct Rollout {
    pub router: Router,
    pub stable: TestBackend,
    pub canary: TestBackend,
}

impl Rollout {
    pub async fn start(service: &str, split: &[(u64, u32)], sticky: bool) -> Self {
        let (stable, canary) = (TestBackend::start("s", 1).await, TestBackend::start("c", 2).await);
        let router = router_for(service);
        router.set_backends(vec![stable.backend(), canary.backend()]);
        router.set_weights(weights(split));
        router.set_pins(Some(Pins {
            stable: Some(1),
            canary: Some(2),
            sticky,
        }));
        Self { router, stable, canary }
    }
}

/// The `Set-Cookie` value the router sends for `revision` of service `web`.
pub fn set_cookie(revision: u64) -> String {
    format!("zenith-web=r{revision}; Path=/; HttpOnly; SameSite=Lax")
}

/// What [`send`] saw of an answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    /// The id of the test backend that answered (`x-backend`), empty for the router's own.
    pub backend: String,
    pub body: String,
    /// Every `Set-Cookie` of the answer, in order.
    pub set_cookies: Vec<String>,
}

/// GET `path` through the router with extra request headers (repeated names repeat).
pub async fn send(client: &TestClient, router: &Router, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = Request::get(format!("http://{}{path}", router.local_addr()));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = client.request(req.body(full("")).unwrap()).await.unwrap();
    let set_cookies = resp
        .headers()
        .get_all(http::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let status = resp.status();
    let backend = resp
        .headers()
        .get("x-backend")
        .map_or("", |v| v.to_str().unwrap())
        .to_owned();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        backend,
        body: String::from_utf8(body.to_vec()).unwrap(),
        set_cookies,
    }
}

#[tokio::test]
async fn new_clients_split_by_weight_and_each_gets_a_cookie() {
    let rollout = Rollout::start("web", &[(1, 90), (2, 10)], true).await;
    let mut clients = JoinSet::new();
    for _ in 0..8 {
        let router = rollout.router.clone();
        clients.spawn(async move {
            let client = client();
            let mut canary = 0;
            for _ in 0..250 {
                let answer = send(&client, &router, "/", &[]).await;
                assert_eq!(answer.status, StatusCode::OK);
                let revision = if answer.backend == "c" { 2 } else { 1 };
                canary += u32::from(revision == 2);
                assert_eq!(answer.set_cookies, [set_cookie(revision)], "{answer:?}");
            }
            canary
        });
    }
    let canary: u32 = clients.join_all().await.into_iter().sum();
    // 10 % ± 3 percentage points of 2,000.
    assert!((140..=260).contains(&canary), "canary got {canary} of 2000");
}

#[tokio::test]
async fn replayed_cookie_keeps_a_client_on_its_revision_across_weight_changes() {
    let rollout = Rollout::start("web", &[(1, 90), (2, 10)], true).await;
    let router = &rollout.router;
    let client = client();
    // One client drawn to each revision; each keeps the cookie it was given.
    let (mut old, mut new) = (None, None);
    while old.is_none() || new.is_none() {
        let answer = send(&client, router, "/", &[]).await;
        let cookie = answer.set_cookies[0].split(';').next().unwrap().to_owned();
        let slot = if answer.backend == "s" { &mut old } else { &mut new };
        slot.get_or_insert(cookie);
    }
    let (old, new) = (old.unwrap(), new.unwrap());
    assert_eq!((old.as_str(), new.as_str()), ("zenith-web=r1", "zenith-web=r2"));

    for canary in [10, 50, 90, 100] {
        router.set_weights(weights(&[(1, 100 - canary), (2, canary)]));
        for _ in 0..50 {
            for (cookie, id) in [(&old, "s"), (&new, "c")] {
                let answer = send(&client, router, "/", &[("cookie", cookie)]).await;
                assert_eq!(answer.backend, id, "cookie {cookie} at canary weight {canary}");
                assert!(answer.set_cookies.is_empty(), "{answer:?}");
            }
        }
    }

    // Revision 1 leaves the weights map: its clients are drawn again and told so.
    router.set_weights(weights(&[(2, 100)]));
    let answer = send(&client, router, "/", &[("cookie", &old)]).await;
    assert_eq!(
        (answer.backend.as_str(), answer.set_cookies),
        ("c", vec![set_cookie(2)])
    );

    // A revision never heard of, or one whose replicas are gone, is drawn again as well.
    let answer = send(&client, router, "/", &[("cookie", "zenith-web=r99")]).await;
    assert_eq!(
        (answer.backend.as_str(), answer.set_cookies),
        ("c", vec![set_cookie(2)])
    );
    router.set_weights(weights(&[(1, 100), (2, 0)]));
    router.set_backends(vec![rollout.stable.backend()]);
    let answer = send(&client, router, "/", &[("cookie", &new)]).await;
    assert_eq!(
        (answer.backend.as_str(), answer.set_cookies),
        ("s", vec![set_cookie(1)])
    );
}

#[tokio::test]
async fn malformed_cookie_values_are_drawn_again() {
    let rollout = Rollout::start("web", &[(1, 100), (2, 0)], true).await;
    let client = client();
    for value in ["zenith-web=2", "zenith-web=rx", "zenith-web=", "zenith-web"] {
        let answer = send(&client, &rollout.router, "/", &[("cookie", value)]).await;
        assert_eq!(answer.backend, "s", "{value}");
        assert_eq!(answer.set_cookies, [set_cookie(1)], "{value}");
    }
}

#[tokio::test]
async fn a_sticky_revision_that_cannot_answer_fails_over_without_an_error() {
    let Rollout {
        router,
        stable: _stable,
        canary,
    } = Rollout::start("web", &[(1, 50), (2, 50)], true).await;
    let client = client();
    // Open a pooled connection to the canary first, so its death is also seen mid-request.
    while send(&client, &router, "/", &[("cookie", "zenith-web=r2")])
        .await
        .backend
        != "c"
    {}
    canary.kill().await;
    for _ in 0..20 {
        let answer = send(&client, &router, "/", &[("cookie", "zenith-web=r2")]).await;
        assert_eq!((answer.status, answer.backend.as_str()), (StatusCode::OK, "s"));
        // A failed attempt does not move the client: its revision may answer again soon.
        assert!(answer.set_cookies.is_empty(), "{answer:?}");
    }
    for _ in 0..20 {
        // Drawn clients are told the revision that actually served them.
        let answer = send(&client, &router, "/", &[]).await;
        assert_eq!((answer.status, answer.backend.as_str()), (StatusCode::OK, "s"));
        assert_eq!(answer.set_cookies, [set_cookie(1)]);
    }
}
