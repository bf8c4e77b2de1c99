//! The tester's `X-Zenith-Version` header during a rollout, and what happens to headers and
//! cookies outside one: without pins the router reads neither.

use zenith_router::Pins;

use crate::common::{client, weights};
use crate::sticky::{Rollout, send, set_cookie};

#[tokio::test]
async fn header_reaches_a_canary_at_weight_zero_and_gets_no_cookie() {
    let rollout = Rollout::start("web", &[(1, 100), (2, 0)], true).await;
    let client = client();
    for (value, id) in [
        ("canary", "c"),
        ("CANARY", "c"),
        ("r2", "c"),
        ("2", "c"),
        ("stable", "s"),
        ("r1", "s"),
    ] {
        let answer = send(&client, &rollout.router, "/", &[("x-zenith-version", value)]).await;
        assert_eq!(answer.backend, id, "{value}");
        assert!(answer.set_cookies.is_empty(), "{value}: {answer:?}");
    }
    // The header wins over a cookie: a tester who browsed the stable version reaches the
    // canary, and keeps the cookie for later.
    let headers = [("cookie", "zenith-web=r1"), ("x-zenith-version", "canary")];
    let answer = send(&client, &rollout.router, "/", &headers).await;
    assert_eq!(answer.backend, "c");
    assert!(answer.set_cookies.is_empty(), "{answer:?}");
}

#[tokio::test]
async fn unknown_header_values_route_as_if_absent() {
    let rollout = Rollout::start("web", &[(1, 100), (2, 0)], true).await;
    let client = client();
    // r3 has no backends; the rest name nothing.
    for value in ["r3", "3", "beta", "r", "r-1", ""] {
        let answer = send(&client, &rollout.router, "/", &[("x-zenith-version", value)]).await;
        assert_eq!(answer.backend, "s", "{value:?}");
        assert_eq!(answer.set_cookies, [set_cookie(1)], "{value:?}");
    }
    // Pins that name a revision without backends: `canary` routes normally too.
    rollout.router.set_pins(Some(Pins {
        stable: Some(1),
        canary: Some(3),
        sticky: true,
    }));
    let answer = send(&client, &rollout.router, "/", &[("x-zenith-version", "canary")]).await;
    assert_eq!(
        (answer.backend.as_str(), answer.set_cookies),
        ("s", vec![set_cookie(1)])
    );
}

#[tokio::test]
async fn header_is_passed_to_the_backend_unchanged() {
    let rollout = Rollout::start("web", &[(1, 100), (2, 0)], false).await;
    let headers = [("x-zenith-version", "Canary")];
    let answer = send(&client(), &rollout.router, "/headers", &headers).await;
    assert_eq!(answer.backend, "c");
    assert!(answer.body.contains("x-zenith-version: Canary\n"), "{}", answer.body);
}

#[tokio::test]
async fn pins_without_stickiness_route_the_header_but_set_no_cookie() {
    let rollout = Rollout::start("web", &[(1, 100), (2, 0)], false).await;
    let client = client();
    let answer = send(&client, &rollout.router, "/", &[("x-zenith-version", "canary")]).await;
    assert_eq!(answer.backend, "c");
    for _ in 0..10 {
        let answer = send(&client, &rollout.router, "/", &[("cookie", "zenith-web=r2")]).await;
        assert_eq!(answer.backend, "s");
        assert!(answer.set_cookies.is_empty(), "{answer:?}");
    }
}

#[tokio::test]
async fn without_pins_neither_header_nor_cookie_is_read() {
    let rollout = Rollout::start("web", &[(1, 100), (2, 0)], true).await;
    let router = &rollout.router;
    router.set_pins(None);
    let client = client();
    let pinned = [("x-zenith-version", "canary"), ("cookie", "zenith-web=r2")];
    for _ in 0..10 {
        for headers in [&pinned[..1], &pinned[1..], &[]] {
            let answer = send(&client, router, "/", headers).await;
            assert_eq!(answer.backend, "s", "{headers:?}");
            assert!(answer.set_cookies.is_empty(), "{answer:?}");
        }
    }
    // A router that never had pins behaves the same.
    let fresh = crate::common::router();
    fresh.set_backends(vec![rollout.stable.backend(), rollout.canary.backend()]);
    fresh.set_weights(weights(&[(1, 1), (2, 0)]));
    let answer = send(&client, &fresh, "/", &pinned).await;
    assert_eq!(answer.backend, "s");
    assert!(answer.set_cookies.is_empty(), "{answer:?}");
}

#[tokio::test]
async fn sticky_cookie_is_found_among_others_which_reach_the_backend() {
    // The label `x/web` names the cookie `zenith-x-web`.
    let rollout = Rollout::start("x/web", &[(1, 100), (2, 0)], true).await;
    let client = client();
    let cookies = "a=1; zenith-x-web=r2; b=2";
    let answer = send(&client, &rollout.router, "/headers", &[("cookie", cookies)]).await;
    assert_eq!(answer.backend, "c");
    assert!(answer.set_cookies.is_empty(), "{answer:?}");
    assert!(answer.body.contains(&format!("cookie: {cookies}\n")), "{}", answer.body);

    // Split over two `Cookie` header lines, both passed on.
    let split = [("cookie", "a=1"), ("cookie", "zenith-x-web=r2; b=2")];
    let answer = send(&client, &rollout.router, "/headers", &split).await;
    assert_eq!(answer.backend, "c");
    assert!(
        answer.body.contains("cookie: a=1\ncookie: zenith-x-web=r2; b=2\n"),
        "{}",
        answer.body
    );

    // Another service's cookie is not this one's.
    let answer = send(&client, &rollout.router, "/", &[("cookie", "zenith-web=r2")]).await;
    assert_eq!(answer.backend, "s");
    let want = "zenith-x-web=r1; Path=/; HttpOnly; SameSite=Lax";
    assert_eq!(answer.set_cookies, [want]);
}
