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
