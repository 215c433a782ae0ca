//! reauth-reqwest against the reference token server (in process): 64 tasks through 401
//! storms, quiet, under chaos, and on a strict server with no grace window.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reauth_reqwest::{Config, FailReason, LogoutReason, Reauth, RequestFailed};
use reauth_testserver::{Server, ServerConfig, ServerStats};
use reqwest_middleware::ClientWithMiddleware;

mod common;

struct Run {
    ok: u64,
    /// 401s handed back after the replay budget (contract rule 7.6): a storm revoked the
    /// token of each replay in turn. An answer, not a lost request; bounded below.
    refused: u64,
    /// Requests the core failed, by reason (the adapter's `RequestFailed`).
    failed: Vec<FailReason>,
    /// Requests that ended any other way: a transport error, an unexpected status.
    lost: Vec<String>,
    logouts: Vec<LogoutReason>,
    server: ServerStats,
    stats: reauth_reqwest::Stats,
}

fn config() -> Config {
    // The demo's: quick backoff, patient retries; two replays because the storms below can
    // revoke the token a request was just replayed with.
    Config::default()
        .with_initial_backoff_ms(50)
        .with_max_backoff_ms(1_000)
        .with_max_retries(8)
        .with_refresh_timeout_ms(3_000)
        .with_max_replays_per_request(2)
}

/// A server, a logged-in `Reauth` on it, a client with the middleware, and the logouts
/// its hook saw.
struct Session {
    server: Server,
    url: String,
    reauth: Reauth,
    client: ClientWithMiddleware,
    logouts: Arc<Mutex<Vec<LogoutReason>>>,
}

async fn session(server_config: ServerConfig, config: Config) -> Session {
    let server = Server::start("127.0.0.1:0".parse().expect("addr"), server_config)
        .await
        .expect("server");
    let url = server.url();
    let logouts = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&logouts);
    let reauth = Reauth::builder(format!("{url}/oauth/token"), "e2e")
        .credentials(common::login(&url).await)
        .config(config)
        .on_logout(move |ended| seen.lock().expect("lock").push(ended.reason))
        .build()
        .expect("reauth");
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(reauth.clone())
        .build();
    Session {
        server,
        url,
        reauth,
        client,
        logouts,
    }
}

async fn run(server_config: ServerConfig, storms: bool, tasks: usize, seconds: u64) -> Run {
    let Session {
        server,
        url,
        reauth,
        client,
        logouts,
    } = session(server_config, config()).await;
    let end = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..tasks)
        .map(|i| {
            let client = client.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let (mut ok, mut refused, mut failed, mut lost) =
                    (0u64, 0u64, Vec::new(), Vec::new());
                while tokio::time::Instant::now() < end {
                    match client.get(format!("{url}/api/items/{i}")).send().await {
                        Ok(r) if r.status() == 200 => ok += 1,
                        Ok(r) if r.status() == 401 => refused += 1,
                        Ok(r) => lost.push(format!("status {}", r.status())),
                        Err(reqwest_middleware::Error::Middleware(e))
                            if e.downcast_ref::<RequestFailed>().is_some() =>
                        {
                            failed.extend(e.downcast_ref::<RequestFailed>().map(|f| f.reason));
                        }
                        Err(e) => lost.push(e.to_string()),
                    }
                }
                (ok, refused, failed, lost)
            })
        })
        .collect();
    if storms {
        while tokio::time::Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(700)).await;
            server.revoke_access_tokens(); // a 401 storm
        }
    }
    let mut result = Run {
        ok: 0,
        refused: 0,
        failed: Vec::new(),
        lost: Vec::new(),
        logouts: Vec::new(),
        server: ServerStats::default(),
        stats: reauth.stats(),
    };
    for w in workers {
        let (ok, refused, failed, lost) = w.await.expect("task");
        result.ok += ok;
        result.refused += refused;
        result.failed.extend(failed);
        result.lost.extend(lost);
    }
    result.stats = reauth.stats();
    result.server = server.stats();
    result.logouts = logouts.lock().expect("lock").clone();
    server.shutdown().await;
    result
}

fn summary(name: &str, r: &Run) -> String {
    format!(
        "{name}: {} ok, {} refused, {} failed, {} lost, {} logouts {:?}, {} reuse detections, {} refresh calls = {} cycles + {} retries, \
         faults {} x503 {} x429 {} dropped {} lost responses, {} 401s",
        r.ok,
        r.refused,
        r.failed.len(),
        r.lost.len(),
        r.logouts.len(),
        r.logouts,
        r.server.reuse_detections,
        r.server.refresh_calls,
        r.stats.refresh_cycles,
        r.stats.refresh_attempts - r.stats.refresh_cycles,
        r.server.token_5xx,
        r.server.token_429,
        r.server.dropped_connections,
        r.server.lost_responses,
        r.server.unauthorized,
    )
}

/// Every 401 the caller got is one the core failed with `Unauthorized` after the replay
/// budget (none lost or invented by the adapter), and they stay rare: at most 1 % of the
/// requests answered 200.
fn refusals_explained(r: &Run) -> bool {
    r.refused == r.stats.failed.unauthorized && r.refused * 100 <= r.ok
}

fn chaos(grace_ms: u64) -> ServerConfig {
    ServerConfig {
        access_ttl_ms: 1_500,
        refresh_latency_ms: 30,
        token_5xx_rate: 0.15,
        token_429_rate: 0.10,
        dropped_connection_rate: 0.10,
        lost_response_rate: 0.10,
        reuse_grace_ms: grace_ms,
        seed: 7,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_64_tasks_lose_nothing() {
    let r = run(
        ServerConfig {
            access_ttl_ms: 1_500,
            ..ServerConfig::default()
        },
        true,
        64,
        3,
    )
    .await;
    println!("{}", summary("default", &r));
    assert!(
        r.lost.is_empty(),
        "{}: {:?}",
        summary("default", &r),
        &r.lost[..r.lost.len().min(5)]
    );
    assert!(r.ok > 0 && r.logouts.is_empty() && r.server.reuse_detections == 0);
    assert!(r.failed.is_empty(), "{}", summary("default", &r));
    assert!(refusals_explained(&r), "{}", summary("default", &r));
    assert_eq!(
        r.server.refresh_calls, r.stats.refresh_attempts,
        "one call per attempt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_64_tasks_lose_nothing() {
    let r = run(chaos(10_000), true, 64, 4).await;
    let s = summary("chaos", &r);
    println!("{s}");
    assert!(
        r.lost.is_empty(),
        "{s}: {:?}",
        &r.lost[..r.lost.len().min(5)]
    );
    assert!(
        r.logouts.is_empty() && r.server.reuse_detections == 0,
        "{s}"
    );
    assert!(r.failed.is_empty() && r.ok >= 200, "{s}");
    assert!(refusals_explained(&r), "{s}");
    assert_eq!(r.server.refresh_calls, r.stats.refresh_attempts, "{s}");
    assert!(
        r.stats.refresh_attempts > r.stats.refresh_cycles,
        "transient faults were retried: {s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_server_quiet_loses_nothing() {
    let r = run(
        ServerConfig {
            access_ttl_ms: 1_500,
            reuse_grace_ms: 0,
            ..ServerConfig::default()
        },
        true,
        64,
        3,
    )
    .await;
    let s = summary("strict", &r);
    println!("{s}");
    assert!(
        r.lost.is_empty() && r.logouts.is_empty() && r.server.reuse_detections == 0,
        "{s}"
    );
    assert!(r.failed.is_empty() && r.ok >= 200, "{s}");
    assert!(refusals_explained(&r), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_server_chaos_logs_out_only_for_a_lost_response() {
    let r = run(chaos(0), true, 64, 4).await;
    let s = summary("strict chaos", &r);
    println!("{s}");
    // Never a duplicate refresh: one server call per attempt the core issued.
    assert_eq!(r.server.refresh_calls, r.stats.refresh_attempts, "{s}");
    // A reuse detection on a strict server can only follow a response lost after the
    // server rotated (the retry presents the rotated-away token): explained, or none.
    assert!(r.server.reuse_detections <= r.server.lost_responses, "{s}");
    for reason in &r.logouts {
        assert_eq!(*reason, LogoutReason::RefreshRejected, "{s}");
    }
    assert!(r.logouts.len() <= 1, "one session, one logout: {s}");
    // Whether or not the session ended: nothing is lost outside the core's own outcomes,
    // every failure the callers saw is one the core counted with the same reason, and
    // work was done.
    assert!(
        r.lost.is_empty(),
        "{s}: {:?}",
        &r.lost[..r.lost.len().min(5)]
    );
    assert!(refusals_explained(&r), "{s}");
    assert!(r.ok >= 200, "{s}");
    let counted = |reason| r.failed.iter().filter(|f| **f == reason).count() as u64;
    for reason in [
        FailReason::NotLoggedIn,
        FailReason::LoggedOut,
        FailReason::RefreshRejected,
        FailReason::RefreshUnavailable,
    ] {
        assert_eq!(counted(reason), r.stats.failed.get(reason), "{reason}: {s}");
    }
    if r.logouts.is_empty() {
        assert!(r.failed.is_empty(), "no session end, no failure: {s}");
    } else {
        // After the logout, requests fail at once (NotLoggedIn); before it, none failed.
        assert!(
            r.failed.iter().all(|f| matches!(
                f,
                FailReason::NotLoggedIn | FailReason::RefreshRejected | FailReason::LoggedOut
            )),
            "{s}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_future_cancels_its_request() {
    let Session {
        server,
        url,
        reauth,
        client,
        ..
    } = session(
        ServerConfig {
            refresh_latency_ms: 500,
            ..ServerConfig::default()
        },
        Config::default(),
    )
    .await;
    server.revoke_access_tokens();
    // The 401 starts a 500 ms refresh; the caller gives up after 100 ms.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(100),
        client.get(format!("{url}/api/x")).send(),
    )
    .await;
    assert!(gave_up.is_err(), "timed out while waiting for the refresh");
    let stats = reauth.stats();
    assert_eq!((stats.cancelled, stats.submitted), (1, 1));
    // The refresh still completes, and the next request goes out with its token.
    let after = client
        .get(format!("{url}/api/y"))
        .send()
        .await
        .expect("answer");
    assert_eq!(after.status(), 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_refresh_fails_with_its_reason_and_logs_out_once() {
    let Session {
        server,
        url,
        reauth,
        client,
        logouts,
    } = session(ServerConfig::default(), Config::default()).await;
    server.revoke_access_tokens();
    server.revoke_families();
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move { client.get(format!("{url}/api/z")).send().await })
        })
        .collect();
    for call in calls {
        let error = call.await.expect("task").expect_err("fails");
        let reason = match &error {
            reqwest_middleware::Error::Middleware(e) => {
                e.downcast_ref::<RequestFailed>().map(|f| f.reason)
            }
            _ => None,
        };
        // Waiting when the refresh was refused (RefreshRejected), submitted after the
        // logout (NotLoggedIn), or in flight then and refused after it (rule 12: LoggedOut).
        assert!(
            matches!(
                reason,
                Some(FailReason::RefreshRejected | FailReason::NotLoggedIn | FailReason::LoggedOut)
            ),
            "{error}"
        );
    }
    assert_eq!(
        *logouts.lock().expect("lock"),
        vec![LogoutReason::RefreshRejected]
    );
    assert!(!reauth.is_logged_in());
    server.shutdown().await;
}

/// The logout hook gets the flight recording: it explains the rejection rule by rule,
/// and its transcript carries no token text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_logout_hook_gets_the_flight_recording() {
    let server = Server::start(
        "127.0.0.1:0".parse().expect("addr"),
        ServerConfig::default(),
    )
    .await
    .expect("server");
    let url = server.url();
    let credentials = common::login(&url).await;
    let tokens = [
        credentials.access_token.expose().to_owned(),
        credentials
            .refresh_token
            .as_ref()
            .map(|r| r.expose().to_owned())
            .expect("a refresh token"),
    ];
    let ended = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&ended);
    let reauth = Reauth::builder(format!("{url}/oauth/token"), "e2e")
        .credentials(credentials)
        .flight_recorder(16)
        .on_logout(move |e| seen.lock().expect("lock").push(e.clone()))
        .build()
        .expect("reauth");
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(reauth.clone())
        .build();
    for _ in 0..40 {
        let r = client
            .get(format!("{url}/api/ok"))
            .send()
            .await
            .expect("ok");
        assert_eq!(r.status(), 200);
    }
    server.revoke_access_tokens();
    server.revoke_families();
    let r = client.get(format!("{url}/api/z")).send().await;
    assert!(r.is_err(), "the refresh was refused");
    let ended = ended.lock().expect("lock").clone();
    let [ended] = ended.as_slice() else {
        panic!("one logout: {ended:?}");
    };
    assert_eq!(ended.reason, LogoutReason::RefreshRejected);
    assert!(
        ended.trace.start.is_some(),
        "16 of 80-odd inputs: a mid-session start"
    );
    let explained = ended.explain();
    assert!(
        explained.contains("rule 7.9 (Rejected) logged out"),
        "{explained}"
    );
    let json = ended.transcript_json();
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("a transcript");
    assert!(parsed["steps"].as_array().is_some_and(|s| s.len() >= 16));
    for token in &tokens {
        assert!(!json.contains(token.as_str()) && !explained.contains(token.as_str()));
    }
    server.shutdown().await;
}
