//! End to end: the reauth host (`reauth_demo::host`, the reauth-reqwest middleware) against the real reference
//! server on loopback — each test starts and stops its own server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reauth::{Config, FailReason, LogoutReason};
use reauth_demo::host::{Failure, ReauthClient};
use reauth_demo::naive::NaiveClient;
use reauth_testserver::{Server, ServerConfig};

async fn start(config: ServerConfig) -> Server {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("address");
    Server::start(addr, config).await.expect("bind loopback")
}

fn config() -> Config {
    reauth_demo::run::reauth_config()
        .with_initial_backoff_ms(20)
        .with_max_backoff_ms(200)
        .with_max_retries(8)
}

async fn logged_in(server: &Server, config: Config) -> Arc<ReauthClient> {
    let client = ReauthClient::new(&server.url(), config);
    client.login().await.expect("login");
    client
}

/// Sends `n` concurrent requests; returns their outcomes.
async fn burst(client: &Arc<ReauthClient>, n: usize) -> Vec<Result<u16, Failure>> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let c = Arc::clone(client);
            tokio::spawn(async move { c.get(&format!("items/{i}")).await.map(|a| a.status) })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_of_concurrent_401s_makes_exactly_one_refresh() {
    let server = start(ServerConfig {
        refresh_latency_ms: 50,
        ..ServerConfig::default()
    })
    .await;
    let client = logged_in(&server, config()).await;
    assert!(burst(&client, 32).await.iter().all(|r| *r == Ok(200)));
    server.revoke_access_tokens();
    let outcomes = burst(&client, 32).await;
    assert!(outcomes.iter().all(|r| *r == Ok(200)), "{outcomes:?}");
    let s = server.stats();
    assert!(s.unauthorized >= 1, "the storm reached the API");
    assert_eq!(
        (s.refresh_calls, s.rotations),
        (1, 1),
        "one refresh for the whole storm"
    );
    assert_eq!(client.stats().refresh_cycles, 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_every_token_lifetime_keeps_every_request_alive() {
    let server = start(ServerConfig {
        access_ttl_ms: 400,
        ..ServerConfig::default()
    })
    .await;
    let client = logged_in(&server, config()).await;
    let until = tokio::time::Instant::now() + Duration::from_millis(2_000);
    let mut requests = 0;
    while tokio::time::Instant::now() < until {
        assert!(burst(&client, 8).await.iter().all(|r| *r == Ok(200)));
        requests += 8;
    }
    let s = server.stats();
    assert!(
        s.rotations >= 4,
        "a 400 ms token is refreshed every ~200 ms: {s:?}"
    );
    assert_eq!(s.refresh_calls, s.rotations, "no duplicate refresh");
    assert_eq!((s.refresh_rejections, s.reuse_detections), (0, 0));
    assert_eq!(client.stats().refresh_cycles, s.rotations);
    let stored = client.stored().expect("credentials stored");
    assert!(
        stored.refresh_token.is_some(),
        "the rotated refresh token is kept"
    );
    assert!(requests > 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoked_family_logs_out_and_fails_every_waiting_request() {
    let server = start(ServerConfig {
        refresh_latency_ms: 100,
        ..ServerConfig::default()
    })
    .await;
    let client = logged_in(&server, config()).await;
    server.revoke_families();
    let outcomes = burst(&client, 16).await;
    assert!(
        outcomes
            .iter()
            .all(|r| *r == Err(Failure::Auth(FailReason::RefreshRejected))
                || *r == Err(Failure::Auth(FailReason::NotLoggedIn))),
        "{outcomes:?}"
    );
    assert!(outcomes.contains(&Err(Failure::Auth(FailReason::RefreshRejected))));
    assert_eq!(
        *client.logouts.lock().expect("lock"),
        vec![LogoutReason::RefreshRejected]
    );
    assert!(client.stored().is_none(), "credentials wiped");
    assert_eq!(server.stats().refresh_calls, 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flaky_token_endpoint_backs_off_and_never_logs_out() {
    let server = start(ServerConfig {
        token_5xx_rate: 0.5,
        token_429_rate: 0.2,
        seed: 3,
        ..ServerConfig::default()
    })
    .await;
    // 60% of calls fail: give the cycle enough retries that exhaustion (0.6^31) cannot
    // happen; the point here is backoff without logout.
    let client = logged_in(&server, config().with_max_retries(30)).await;
    for _ in 0..5 {
        server.revoke_access_tokens();
        let outcomes = burst(&client, 16).await;
        assert!(outcomes.iter().all(|r| *r == Ok(200)), "{outcomes:?}");
    }
    let s = server.stats();
    assert!(s.token_5xx + s.token_429 > 0, "faults were injected: {s:?}");
    assert_eq!(s.rotations, 5, "one rotation per storm");
    let c = client.stats();
    assert_eq!(c.refresh_cycles, 5);
    assert_eq!(
        s.refresh_calls, c.refresh_attempts,
        "every call is a cycle or a retry"
    );
    assert!(client.logouts.lock().expect("lock").is_empty());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_refresh_response_is_retried_within_the_grace_window() {
    let server = start(ServerConfig {
        lost_response_rate: 1.0,
        ..ServerConfig::default()
    })
    .await;
    let client = logged_in(&server, config()).await;
    server.revoke_access_tokens();
    let waiting = {
        let c = Arc::clone(&client);
        tokio::spawn(async move { c.get("items/1").await.map(|a| a.status) })
    };
    // Let the first refresh rotate and lose its response, then heal the network.
    while server.stats().lost_responses == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server
        .configure(ServerConfig::default())
        .expect("a valid config");
    assert_eq!(waiting.await.expect("task"), Ok(200));
    let s = server.stats();
    assert_eq!(
        (s.lost_responses, s.rotations, s.grace_replays),
        (1, 1, 1),
        "{s:?}"
    );
    assert_eq!(s.reuse_detections, 0);
    assert!(client.logouts.lock().expect("lock").is_empty());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_naive_strategy_really_shows_its_defects() {
    // Strict reuse detection (no grace), as RFC 9700 describes it.
    let server = start(ServerConfig {
        refresh_latency_ms: 50,
        reuse_grace_ms: 0,
        ..ServerConfig::default()
    })
    .await;
    let naive = NaiveClient::new(&server.url());
    naive.login().await.expect("login");
    server.revoke_access_tokens();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let n = Arc::clone(&naive);
            tokio::spawn(async move { n.get(&format!("items/{i}")).await })
        })
        .collect();
    let mut lost = 0;
    for t in tasks {
        lost += usize::from(!t.await.expect("task"));
    }
    let s = server.stats();
    assert!(s.refresh_calls > 1, "duplicate refreshes: {s:?}");
    assert!(
        s.reuse_detections >= 1,
        "a duplicate refresh replays a used token: {s:?}"
    );
    assert!(
        naive
            .stats
            .logouts
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1,
        "spurious logout"
    );
    assert!(lost >= 1, "requests lost");
    server.shutdown().await;

    // The same storm through reauth: one refresh, nothing lost, no logout.
    let server = start(ServerConfig {
        refresh_latency_ms: 50,
        reuse_grace_ms: 0,
        ..ServerConfig::default()
    })
    .await;
    let client = logged_in(&server, config()).await;
    server.revoke_access_tokens();
    assert!(burst(&client, 16).await.iter().all(|r| *r == Ok(200)));
    assert_eq!(
        (
            server.stats().refresh_calls,
            server.stats().reuse_detections
        ),
        (1, 0)
    );
    server.shutdown().await;
}
