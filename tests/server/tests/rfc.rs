//! The reference server holds clients to RFC 6749 and RFC 6750: integer `expires_in`,
//! OAuth error codes only where §5.2 defines them, `Retry-After` on 503/429, no error code
//! for a request without credentials, two distinct faults, a reset, and a strict mode.

use std::collections::HashSet;

use reauth_testserver::{Server, ServerConfig};

async fn start(config: ServerConfig) -> (Server, reqwest::Client) {
    let server = Server::start("127.0.0.1:0".parse().expect("address"), config)
        .await
        .expect("server starts");
    (server, reqwest::Client::new())
}

async fn login(http: &reqwest::Client, url: &str) -> serde_json::Value {
    http.post(format!("{url}/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "u"),
            ("password", "p"),
        ])
        .send()
        .await
        .expect("token endpoint")
        .json()
        .await
        .expect("json")
}

/// A server, a login on it and one rotation: the server, a client, its URL, the refresh
/// token rotated away, and the rotation's answer.
async fn rotated_once(
    config: ServerConfig,
) -> (Server, reqwest::Client, String, String, serde_json::Value) {
    let (server, http) = start(config).await;
    let url = server.url();
    let first = login(&http, &url).await;
    let rt = first["refresh_token"].as_str().expect("rt").to_owned();
    let rotated = refreshed(&http, &url, &rt).await;
    (server, http, url, rt, rotated)
}

/// A refresh that must answer with JSON.
async fn refreshed(http: &reqwest::Client, url: &str, token: &str) -> serde_json::Value {
    refresh(http, url, token)
        .await
        .expect("answer")
        .json()
        .await
        .expect("json")
}

async fn refresh(
    http: &reqwest::Client,
    url: &str,
    token: &str,
) -> reqwest::Result<reqwest::Response> {
    http.post(format!("{url}/oauth/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
}

#[tokio::test]
async fn expires_in_is_an_integer_rounded_down_and_at_least_one() {
    for (ttl, seconds) in [(1_500, 1), (60_000, 60), (200, 1), (2_999, 2)] {
        let (server, http) = start(ServerConfig {
            access_ttl_ms: ttl,
            ..ServerConfig::default()
        })
        .await;
        let token = login(&http, &server.url()).await;
        assert!(token["expires_in"].is_u64(), "{token}");
        assert_eq!(token["expires_in"], seconds, "ttl {ttl} ms");
        // And it parses as an integer, as strict clients (golang.org/x/oauth2) require.
        let parsed: u64 = serde_json::from_value(token["expires_in"].clone()).expect("integer");
        assert_eq!(parsed, seconds);
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_request_without_credentials_gets_no_error_code() {
    let (server, http) = start(ServerConfig::default()).await;
    let bare = http
        .get(format!("{}/api/me", server.url()))
        .send()
        .await
        .expect("api");
    assert_eq!(bare.status(), 401);
    assert_eq!(
        bare.headers()["www-authenticate"],
        r#"Bearer realm="reauth""#
    );
    let bad = http
        .get(format!("{}/api/me", server.url()))
        .bearer_auth("nope")
        .send()
        .await
        .expect("api");
    assert!(
        bad.headers()["www-authenticate"]
            .to_str()
            .expect("ascii")
            .contains(r#"error="invalid_token""#)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn unavailable_and_throttled_carry_retry_after_and_no_oauth_error() {
    for (config, status) in [
        (
            ServerConfig {
                token_5xx_rate: 1.0,
                ..ServerConfig::default()
            },
            503,
        ),
        (
            ServerConfig {
                token_429_rate: 1.0,
                ..ServerConfig::default()
            },
            429,
        ),
    ] {
        let (server, http) = start(config).await;
        let token = login(&http, &server.url()).await;
        let mut seen = HashSet::new();
        for _ in 0..20 {
            let r = refresh(
                &http,
                &server.url(),
                token["refresh_token"].as_str().expect("rt"),
            )
            .await
            .expect("answer");
            assert_eq!(r.status(), status);
            let retry: u64 = r.headers()["retry-after"]
                .to_str()
                .expect("ascii")
                .parse()
                .expect("seconds");
            assert!((1..=3).contains(&retry));
            seen.insert(retry);
            let body = r.text().await.expect("body");
            assert!(
                serde_json::from_str::<serde_json::Value>(&body).is_err(),
                "no OAuth error JSON: {body}"
            );
        }
        assert!(seen.len() > 1, "Retry-After varies: {seen:?}");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_dropped_connection_gives_no_status_and_rotates_nothing() {
    let (server, http) = start(ServerConfig {
        dropped_connection_rate: 1.0,
        ..ServerConfig::default()
    })
    .await;
    let token = login(&http, &server.url()).await;
    let outcome = refresh(
        &http,
        &server.url(),
        token["refresh_token"].as_str().expect("rt"),
    )
    .await;
    let error = outcome.expect_err("no response at all");
    assert!(error.status().is_none(), "{error}");
    let stats = server.stats();
    assert_eq!((stats.dropped_connections, stats.rotations), (1, 0));
    server.shutdown().await;
}

#[tokio::test]
async fn a_lost_response_has_a_status_line_then_a_broken_body_and_the_server_rotated() {
    let (server, http) = start(ServerConfig {
        lost_response_rate: 1.0,
        ..ServerConfig::default()
    })
    .await;
    let token = login(&http, &server.url()).await;
    let r = refresh(
        &http,
        &server.url(),
        token["refresh_token"].as_str().expect("rt"),
    )
    .await
    .expect("a status line");
    assert_eq!(r.status(), 200);
    assert!(r.text().await.is_err(), "the body breaks off");
    let stats = server.stats();
    assert_eq!((stats.lost_responses, stats.rotations), (1, 1));
    server.shutdown().await;
}

#[tokio::test]
async fn strict_mode_revokes_on_the_first_reuse_and_reset_starts_over() {
    let (server, http) = start(ServerConfig {
        reuse_grace_ms: 0,
        ..ServerConfig::default()
    })
    .await;
    let url = server.url();
    let token = login(&http, &url).await;
    let rt = token["refresh_token"].as_str().expect("rt").to_owned();
    assert_eq!(
        refresh(&http, &url, &rt).await.expect("answer").status(),
        200
    );
    let reused = refresh(&http, &url, &rt).await.expect("answer");
    assert_eq!(reused.status(), 400);
    let body: serde_json::Value = reused.json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant");
    let stats = server.stats();
    assert_eq!(
        (
            stats.reuse_detections,
            stats.families_revoked,
            stats.grace_replays
        ),
        (1, 1, 0)
    );

    let reset = http
        .post(format!("{url}/admin/reset"))
        .send()
        .await
        .expect("reset");
    assert_eq!(reset.status(), 204);
    assert_eq!(server.stats(), Default::default(), "counters start over");
    assert_eq!(
        refresh(&http, &url, &rt).await.expect("answer").status(),
        400,
        "tokens are forgotten"
    );
    server.shutdown().await;
}

async fn admin_stats(http: &reqwest::Client, url: &str) -> serde_json::Value {
    http.get(format!("{url}/admin/stats"))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn a_scoped_endpoint_refuses_a_live_token_with_insufficient_scope() {
    let (server, http) = start(ServerConfig::default()).await;
    let url = server.url();
    let token = login(&http, &url).await;
    let at = token["access_token"].as_str().expect("at");
    for request in [
        http.get(format!("{url}/api/scoped/report")),
        http.post(format!("{url}/api/scoped/users/1")),
        http.get(format!("{url}/api/scoped")),
    ] {
        let r = request.bearer_auth(at).send().await.expect("api");
        assert_eq!(
            r.status(),
            403,
            "RFC 6750 §3.1: insufficient_scope is a 403"
        );
        assert_eq!(
            r.headers()["www-authenticate"],
            r#"Bearer realm="reauth", error="insufficient_scope", scope="admin""#
        );
    }
    // The same token is live everywhere else.
    let ok = http
        .get(format!("{url}/api/me"))
        .bearer_auth(at)
        .send()
        .await
        .expect("api");
    assert_eq!(ok.status(), 200);
    // A dead or missing token gets the answers of every other /api route.
    let dead = http
        .get(format!("{url}/api/scoped/report"))
        .bearer_auth("nope")
        .send()
        .await
        .expect("api");
    assert_eq!(dead.status(), 401);
    assert!(
        dead.headers()["www-authenticate"]
            .to_str()
            .expect("ascii")
            .contains(r#"error="invalid_token""#)
    );
    let bare = http
        .get(format!("{url}/api/scoped/report"))
        .send()
        .await
        .expect("api");
    assert_eq!(bare.status(), 401);
    assert_eq!(
        bare.headers()["www-authenticate"],
        r#"Bearer realm="reauth""#
    );
    let stats = admin_stats(&http, &url).await;
    assert_eq!(
        (
            &stats["scope_refusals"],
            &stats["unauthorized"],
            &stats["served"]
        ),
        (&3.into(), &2.into(), &1.into()),
        "{stats}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_grace_replay_after_the_access_token_was_revoked_mints_a_fresh_one() {
    let (server, http, url, rt, rotated) = rotated_once(ServerConfig {
        reuse_grace_ms: 10_000,
        ..ServerConfig::default()
    })
    .await;
    let rt = rt.as_str();
    let revoked = http
        .post(format!("{url}/admin/revoke-access"))
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), 204);

    let replay = refresh(&http, &url, rt).await.expect("answer");
    assert_eq!(replay.status(), 200);
    let replay: serde_json::Value = replay.json().await.expect("json");
    assert_eq!(
        replay["refresh_token"], rotated["refresh_token"],
        "the refresh token rotated last stays"
    );
    assert_ne!(replay["access_token"], rotated["access_token"], "{replay}");
    assert_eq!(replay["expires_in"], 60);
    let at = replay["access_token"].as_str().expect("at");
    let api = http
        .get(format!("{url}/api/me"))
        .bearer_auth(at)
        .send()
        .await
        .expect("api");
    assert_eq!(api.status(), 200, "the grace window hands out a live token");
    // Still the same pair on a second replay, and the family's refresh token still rotates.
    let again = refreshed(&http, &url, rt).await;
    assert_eq!(
        (&again["access_token"], &again["refresh_token"]),
        (&replay["access_token"], &replay["refresh_token"])
    );
    let next = refresh(&http, &url, rotated["refresh_token"].as_str().expect("rt"))
        .await
        .expect("answer");
    assert_eq!(next.status(), 200);
    let stats = admin_stats(&http, &url).await;
    assert_eq!(
        (
            &stats["grace_replays"],
            &stats["rotations"],
            &stats["tokens_issued"],
            &stats["reuse_detections"]
        ),
        (&2.into(), &2.into(), &4.into(), &0.into()),
        "login, 2 rotations and 1 fresh access token: {stats}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_grace_replay_after_the_access_token_expired_mints_a_fresh_one() {
    let (server, http, url, rt, rotated) = rotated_once(ServerConfig {
        access_ttl_ms: 1_000,
        reuse_grace_ms: 10_000,
        ..ServerConfig::default()
    })
    .await;
    let rt = rt.as_str();
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;

    let replay = refreshed(&http, &url, rt).await;
    assert_eq!(replay["refresh_token"], rotated["refresh_token"]);
    assert_ne!(replay["access_token"], rotated["access_token"], "{replay}");
    let api = http
        .get(format!("{url}/api/me"))
        .bearer_auth(replay["access_token"].as_str().expect("at"))
        .send()
        .await
        .expect("api");
    assert_eq!(api.status(), 200, "the grace window hands out a live token");
    let stats = server.stats();
    assert_eq!(
        (stats.grace_replays, stats.rotations, stats.tokens_issued),
        (1, 1, 3)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_grace_replay_of_a_live_token_says_how_long_it_has_left() {
    let (server, http, url, rt, rotated) = rotated_once(ServerConfig {
        access_ttl_ms: 10_000,
        reuse_grace_ms: 10_000,
        ..ServerConfig::default()
    })
    .await;
    let rt = rt.as_str();
    assert_eq!(rotated["expires_in"], 10);
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;

    let replay = refreshed(&http, &url, rt).await;
    assert_eq!(
        (&replay["access_token"], &replay["refresh_token"]),
        (&rotated["access_token"], &rotated["refresh_token"]),
        "the same pair"
    );
    let left = replay["expires_in"].as_u64().expect("integer seconds");
    assert!(
        (1..=8).contains(&left),
        "less than 8.9 s left, rounded down: {replay}"
    );
    let stats = server.stats();
    assert_eq!(
        (stats.grace_replays, stats.rotations, stats.tokens_issued),
        (1, 1, 2)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn admin_config_refuses_a_rate_outside_zero_to_one_and_keeps_the_config() {
    let (server, http) = start(ServerConfig::default()).await;
    let url = server.url();
    for field in [
        "token_5xx_rate",
        "token_429_rate",
        "dropped_connection_rate",
        "lost_response_rate",
    ] {
        for value in [1.5, -0.1, 1.000_001] {
            let r = http
                .post(format!("{url}/admin/config"))
                .json(&serde_json::json!({ field: value, "access_ttl_ms": 5_000 }))
                .send()
                .await
                .expect("config");
            assert_eq!(r.status(), 400, "{field} = {value}");
            let body: serde_json::Value = r.json().await.expect("a JSON error");
            assert_eq!(body["field"], field, "{body}");
            assert!(
                body["error_description"]
                    .as_str()
                    .expect("a description")
                    .contains(field),
                "{body}"
            );
        }
    }
    let unchanged: serde_json::Value = http
        .post(format!("{url}/admin/config"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("config")
        .json()
        .await
        .expect("json");
    assert_eq!(
        serde_json::from_value::<ServerConfig>(unchanged).expect("a config"),
        ServerConfig::default(),
        "nothing of a refused patch is applied"
    );
    // The bounds themselves are fine.
    let r = http
        .post(format!("{url}/admin/config"))
        .json(&serde_json::json!({"token_5xx_rate": 1.0, "token_429_rate": 0.0}))
        .send()
        .await
        .expect("config");
    assert_eq!(r.status(), 200);
    server.shutdown().await;
}

#[tokio::test]
async fn start_refuses_a_rate_that_is_not_a_share_or_an_absurd_duration() {
    for bad in [
        ServerConfig {
            token_5xx_rate: f64::NAN,
            ..ServerConfig::default()
        },
        ServerConfig {
            token_429_rate: f64::INFINITY,
            ..ServerConfig::default()
        },
        ServerConfig {
            dropped_connection_rate: -0.5,
            ..ServerConfig::default()
        },
        ServerConfig {
            lost_response_rate: 2.0,
            ..ServerConfig::default()
        },
        ServerConfig {
            access_ttl_ms: u64::MAX,
            ..ServerConfig::default()
        },
        ServerConfig {
            access_ttl_ms: 0,
            ..ServerConfig::default()
        },
        ServerConfig {
            refresh_latency_ms: u64::MAX,
            ..ServerConfig::default()
        },
        ServerConfig {
            reuse_grace_ms: reauth_testserver::MAX_DURATION_MS + 1,
            ..ServerConfig::default()
        },
    ] {
        let started = Server::start("127.0.0.1:0".parse().expect("address"), bad.clone()).await;
        let Err(error) = started else {
            panic!("started with {bad:?}");
        };
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{error}");
    }
}

#[tokio::test]
async fn configure_refuses_a_rate_that_is_not_a_share_and_keeps_the_knobs() {
    for (value, ok) in [
        (0.0, true),
        (-0.0, true),
        (1.0, true),
        (f64::NAN, false),
        (f64::INFINITY, false),
        (f64::NEG_INFINITY, false),
        (1.0 + f64::EPSILON, false),
        (-f64::MIN_POSITIVE, false),
    ] {
        let config = ServerConfig {
            lost_response_rate: value,
            ..ServerConfig::default()
        };
        match config.validate() {
            Ok(()) => assert!(ok, "{value} accepted"),
            Err(e) => {
                assert!(!ok, "{value} refused: {e}");
                assert_eq!(e.field(), "lost_response_rate");
                assert!(e.to_string().contains("lost_response_rate"), "{e}");
            }
        }
    }

    let (server, http) = start(ServerConfig::default()).await;
    let url = server.url();
    let token = login(&http, &url).await;
    let refused = server.configure(ServerConfig {
        token_5xx_rate: f64::NAN,
        ..ServerConfig::default()
    });
    assert_eq!(
        refused.map_err(|e| e.field()),
        Err("token_5xx_rate"),
        "NaN is no share"
    );
    // The knobs are unchanged: the refresh is served, not a panic or a 503.
    let r = refresh(&http, &url, token["refresh_token"].as_str().expect("rt"))
        .await
        .expect("answer");
    assert_eq!(r.status(), 200);
    server
        .configure(ServerConfig {
            token_5xx_rate: 1.0,
            ..ServerConfig::default()
        })
        .expect("1.0 is a share");
    let next: serde_json::Value = r.json().await.expect("json");
    let r = refresh(&http, &url, next["refresh_token"].as_str().expect("rt"))
        .await
        .expect("answer");
    assert_eq!(r.status(), 503);
    server.shutdown().await;
}

#[tokio::test]
async fn a_forbidden_endpoint_refuses_a_live_token_with_a_bare_403() {
    let (server, http) = start(ServerConfig::default()).await;
    let url = server.url();
    let token = login(&http, &url).await;
    let at = token["access_token"].as_str().expect("at");
    let r = http
        .get(format!("{url}/api/forbidden/admin"))
        .bearer_auth(at)
        .send()
        .await
        .expect("api");
    assert_eq!(r.status(), 403);
    assert!(
        r.headers().get("www-authenticate").is_none(),
        "no challenge"
    );
    let dead = http
        .get(format!("{url}/api/forbidden"))
        .bearer_auth("nope")
        .send()
        .await
        .expect("api");
    assert_eq!(dead.status(), 401);
    let s = server.stats();
    assert_eq!((s.forbidden, s.served, s.unauthorized), (1, 0, 1));
}
