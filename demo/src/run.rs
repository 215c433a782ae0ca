//! Runs one load against a fresh reference server and reports what happened.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use reauth::Config;
use reauth_testserver::{Server, ServerConfig, ServerStats};

use crate::host::{Failure, ReauthClient};
use crate::naive::NaiveClient;

/// The load.
#[derive(Clone, Debug)]
pub struct Load {
    /// Concurrent clients (tasks sharing one session).
    pub clients: usize,
    /// How long they send requests.
    pub duration: Duration,
    /// Access-token lifetime at the server.
    pub ttl_ms: u64,
    /// Faults on the token endpoint (503, 429, dropped connections, lost responses,
    /// latency) and a forced 401 storm every second.
    pub chaos: bool,
    /// A strict server: no grace window, any reuse of a refresh token revokes its family
    /// at once.
    pub strict: bool,
    /// Seed of the server's fault dice.
    pub seed: u64,
    /// Show a progress bar.
    pub progress: bool,
}

/// What one run did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// "reauth" or "naive".
    pub strategy: &'static str,
    /// Requests started.
    pub requests: u64,
    /// Requests answered 200.
    pub ok: u64,
    /// Requests that ended without a 200, by reason.
    pub failed: BTreeMap<String, u64>,
    /// Refresh calls the client made (from its own books).
    pub client_refresh_calls: u64,
    /// Refresh cycles (reauth: from its stats; naive: one per call).
    pub refresh_cycles: u64,
    /// Transient refresh retries (reauth only).
    pub transient_retries: u64,
    /// Requests replayed after a 401.
    pub replays: u64,
    /// Logouts.
    pub logouts: u64,
    /// Each logout's flight recording (reauth only): its explanation and its transcript.
    pub recordings: Vec<(String, String)>,
    /// 401 storms forced during the run.
    pub storms: u64,
    /// The server's counters.
    pub server: ServerStats,
    /// Wall time.
    pub elapsed: Duration,
}

impl Report {
    /// Requests that did not get their response.
    pub fn lost(&self) -> u64 {
        self.failed.values().sum()
    }
}

/// The reauth configuration the demo uses: defaults (contract v2's window needs no
/// widening for 1–2 second tokens), except a quick backoff.
pub fn reauth_config() -> Config {
    Config::default()
        .with_initial_backoff_ms(50)
        .with_max_backoff_ms(1_000)
        .with_max_retries(8)
        .with_refresh_timeout_ms(3_000)
}

/// The server knobs for `load`.
pub fn server_config(load: &Load) -> ServerConfig {
    let mut c = ServerConfig {
        access_ttl_ms: load.ttl_ms,
        seed: load.seed,
        ..ServerConfig::default()
    };
    if load.chaos {
        c.refresh_latency_ms = 30;
        c.token_5xx_rate = 0.15;
        c.token_429_rate = 0.10;
        c.dropped_connection_rate = 0.10;
        c.lost_response_rate = 0.10;
        // A lost response followed by several 503s can push the retry past a short
        // grace window; real servers give seconds to minutes.
        c.reuse_grace_ms = 10_000;
    }
    if load.strict {
        c.reuse_grace_ms = 0;
    }
    c
}

fn bar(load: &Load, label: &str) -> ProgressBar {
    if !load.progress {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(load.duration.as_millis() as u64);
    pb.set_style(
        ProgressStyle::with_template("{prefix:>7} [{bar:40}] {elapsed:>3} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_prefix(label.to_owned());
    pb
}

async fn start_server(load: &Load) -> Server {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
    Server::start(addr, server_config(load))
        .await
        .expect("the server binds a loopback port")
}

/// Forces a 401 storm every second while `until` is in the future (chaos only).
fn storms(server: &Server, load: &Load, until: Instant) -> tokio::task::JoinHandle<u64> {
    let url = server.url();
    let chaos = load.chaos;
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut n = 0;
        while chaos && Instant::now() + Duration::from_millis(1_000) < until {
            tokio::time::sleep(Duration::from_millis(1_000)).await;
            if http
                .post(format!("{url}/admin/revoke-access"))
                .send()
                .await
                .is_ok()
            {
                n += 1;
            }
        }
        n
    })
}

/// What the shared load loop measured.
struct Counts {
    requests: u64,
    ok: u64,
    storms: u64,
    elapsed: Duration,
}

/// Runs `load.clients` tasks that call `request(path)` until the time is up, with a
/// progress bar and (under chaos) forced 401 storms. `request` returns whether the
/// request got its 200; `refreshes` feeds the progress line.
async fn drive<F, Fut>(
    load: &Load,
    server: &Server,
    label: &str,
    request: F,
    refreshes: impl Fn() -> u64,
) -> Counts
where
    F: Fn(String) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let started = Instant::now();
    let until = started + load.duration;
    let pb = bar(load, label);
    let storm_task = storms(server, load, until);
    let (requests, ok) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let tasks: Vec<_> = (0..load.clients)
        .map(|worker| {
            let (request, requests, ok) = (request.clone(), Arc::clone(&requests), Arc::clone(&ok));
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < until {
                    n += 1;
                    requests.fetch_add(1, Ordering::Relaxed);
                    if request(format!("items/{worker}-{n}")).await {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
        pb.set_position(started.elapsed().as_millis() as u64);
        pb.set_message(format!(
            "{} requests, {} refreshes",
            requests.load(Ordering::Relaxed),
            refreshes()
        ));
    }
    for t in tasks {
        let _ = t.await;
    }
    pb.finish_and_clear();
    Counts {
        requests: requests.load(Ordering::Relaxed),
        ok: ok.load(Ordering::Relaxed),
        storms: storm_task.await.unwrap_or(0),
        elapsed: started.elapsed(),
    }
}

/// Runs `load` through reauth.
pub async fn run_reauth(load: &Load) -> Report {
    let server = start_server(load).await;
    let client = ReauthClient::new(&server.url(), reauth_config());
    client.login().await.expect("login at the reference server");
    let failed = Arc::new(std::sync::Mutex::new(BTreeMap::<String, u64>::new()));
    let relogins = Arc::new(tokio::sync::Mutex::new(0usize));
    let request = {
        let (client, failed) = (Arc::clone(&client), Arc::clone(&failed));
        move |path: String| {
            let (client, failed, relogins) = (
                Arc::clone(&client),
                Arc::clone(&failed),
                Arc::clone(&relogins),
            );
            async move {
                let why = match client.get(&path).await {
                    Ok(answer) if answer.status == 200 => return true,
                    Ok(answer) => format!("http {}", answer.status),
                    Err(Failure::Auth(reason)) => reason.to_string(),
                    Err(Failure::Network) => "network".to_owned(),
                };
                *failed.lock().expect("counter lock").entry(why).or_default() += 1;
                // After a logout, one task logs in again so the run can go on.
                let mut seen = relogins.lock().await;
                let logouts = client.logouts.lock().expect("logouts lock").len();
                if logouts > *seen {
                    *seen = logouts;
                    let _ = client.login().await;
                }
                false
            }
        }
    };
    let counts = drive(load, &server, "reauth", request, || {
        client.stats().refresh_cycles
    })
    .await;
    let s = client.stats();
    let report = Report {
        strategy: "reauth",
        requests: counts.requests,
        ok: counts.ok,
        failed: failed.lock().expect("counter lock").clone(),
        client_refresh_calls: s.refresh_attempts,
        refresh_cycles: s.refresh_cycles,
        transient_retries: s.refresh_attempts - s.refresh_cycles,
        replays: s.replayed,
        logouts: client.logouts.lock().expect("logouts lock").len() as u64,
        recordings: client.recordings.lock().expect("recordings lock").clone(),
        storms: counts.storms,
        server: server.stats(),
        elapsed: counts.elapsed,
    };
    server.shutdown().await;
    report
}

/// Runs `load` through the naive strategy.
pub async fn run_naive(load: &Load) -> Report {
    let server = start_server(load).await;
    let client = NaiveClient::new(&server.url());
    client.login().await.expect("login at the reference server");
    let request = {
        let client = Arc::clone(&client);
        move |path: String| {
            let client = Arc::clone(&client);
            async move { client.get(&path).await }
        }
    };
    let counts = drive(load, &server, "naive", request, || {
        client.stats.refresh_calls.load(Ordering::Relaxed)
    })
    .await;
    let s = &client.stats;
    let mut failed = BTreeMap::new();
    for (why, n) in [
        (
            "refresh failed or refused",
            s.failed_auth.load(Ordering::Relaxed),
        ),
        ("network", s.failed_network.load(Ordering::Relaxed)),
    ] {
        if n > 0 {
            failed.insert(why.to_owned(), n);
        }
    }
    let refresh_calls = s.refresh_calls.load(Ordering::Relaxed);
    let report = Report {
        strategy: "naive",
        requests: counts.requests,
        ok: counts.ok,
        failed,
        client_refresh_calls: refresh_calls,
        refresh_cycles: refresh_calls,
        transient_retries: 0,
        replays: s.replays.load(Ordering::Relaxed),
        logouts: s.logouts.load(Ordering::Relaxed),
        recordings: Vec::new(),
        storms: counts.storms,
        server: server.stats(),
        elapsed: counts.elapsed,
    };
    server.shutdown().await;
    report
}
