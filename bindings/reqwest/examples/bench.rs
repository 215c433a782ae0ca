//! The middleware next to bare reqwest on loopback against the reference server with a
//! long-lived token (no refresh): interleaved rounds, the median ratio to bare reqwest in
//! the same round, sequential and with concurrent tasks. For reading (scripts/bench-adapters
//! runs it); the allocation budget is a test (tests/allocations.rs).
//!
//!     cargo run --release -p reauth-reqwest --example bench -- [REQUESTS] [ROUNDS] [TASKS]

use std::time::Instant;

use reauth_reqwest::Reauth;
use reauth_testserver::{Server, ServerConfig};

#[path = "../tests/common/mod.rs"]
mod common;

#[derive(Clone)]
enum Client {
    Bare(reqwest::Client, String),
    Reauth(reqwest_middleware::ClientWithMiddleware),
}

impl Client {
    async fn get(&self, url: &str) {
        let response = match self {
            Client::Bare(c, bearer) => c.get(url).header("authorization", bearer).send().await,
            Client::Reauth(c) => c.get(url).send().await.map_err(|e| match e {
                reqwest_middleware::Error::Reqwest(e) => e,
                e => panic!("{e}"),
            }),
        };
        let response = response.expect("answered");
        assert_eq!(response.status(), 200);
        response.bytes().await.expect("body");
    }
}

async fn run(client: &Client, url: &str, requests: usize, tasks: usize) -> f64 {
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (client, url) = (client.clone(), url.to_owned());
        handles.push(tokio::spawn(async move {
            for i in 0..requests / tasks {
                client.get(&format!("{url}/{}", (i + t) % 16)).await;
            }
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
    started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().expect("a number"));
    let requests = args.next().unwrap_or(4000);
    let rounds = args.next().unwrap_or(9);
    let tasks = args.next().unwrap_or(32);
    let config = ServerConfig {
        access_ttl_ms: 3_600_000,
        ..ServerConfig::default()
    };
    let server = Server::start("127.0.0.1:0".parse().expect("addr"), config)
        .await
        .expect("server");
    let url = server.url();
    let credentials = common::login(&url).await;
    let access = credentials.access_token.expose().to_owned();
    let reauth = Reauth::builder(format!("{url}/oauth/token"), "bench")
        .credentials(credentials)
        .build()
        .expect("reauth");
    let clients = [
        (
            "bare reqwest",
            Client::Bare(reqwest::Client::new(), format!("Bearer {access}")),
        ),
        (
            "a header-only middleware",
            Client::Reauth(
                reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
                    .with(common::Bearer(format!("Bearer {access}")))
                    .build(),
            ),
        ),
        (
            "reauth-reqwest",
            Client::Reauth(
                reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
                    .with(reauth.clone())
                    .build(),
            ),
        ),
    ];
    let api = format!("{url}/api/items");
    for (_, client) in &clients {
        run(client, &api, 500, 1).await; // warm
    }
    println!(
        "reqwest, {requests} requests x {rounds} interleaved rounds; median ratio to bare reqwest in the same round"
    );
    println!("| mode | client | µs/request | ratio |\n| --- | --- | ---: | ---: |");
    for t in [1, tasks] {
        let mut times = vec![Vec::new(); clients.len()];
        for r in 0..rounds {
            for i in 0..clients.len() {
                let k = (i + r) % clients.len();
                times[k].push(run(&clients[k].1, &api, requests, t).await);
            }
        }
        let mode = if t == 1 {
            "sequential".to_owned()
        } else {
            format!("{t} tasks")
        };
        for (k, (name, _)) in clients.iter().enumerate() {
            let ratios = times[k].iter().zip(&times[0]).map(|(a, b)| a / b).collect();
            let us = median(times[k].clone()) / requests as f64 * 1e6;
            println!("| {mode} | {name} | {us:.0} | {:.2}× |", median(ratios));
        }
    }
    assert_eq!(reauth.stats().refresh_attempts, 0, "a long-lived token");
    load_and_storm(&clients[0].1, &clients[2].1, &url, &api).await;
}

/// The demo's load: 64 tasks for 2 s with a fixed token, requests/s of bare reqwest and
/// of the middleware (interleaved, twice each); then a 401 storm under that load — every
/// access token revoked at once — and how long until every task succeeded again, next to
/// one refresh round trip plus one request round trip measured in the same run.
async fn load_and_storm(bare: &Client, reauth: &Client, url: &str, api: &str) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    const TASKS: usize = 64;
    async fn load(client: &Client, api: &str, secs: f64) -> f64 {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let mut handles = Vec::new();
        for t in 0..TASKS {
            let (client, api, stop, done) = (
                client.clone(),
                format!("{api}/{}", t % 16),
                stop.clone(),
                done.clone(),
            );
            handles.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    client.get(&api).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        tokio::time::sleep(std::time::Duration::from_secs_f64(secs)).await;
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.await.expect("task");
        }
        done.load(Ordering::Relaxed) as f64 / secs
    }
    let (mut b, mut r) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        b.push(load(bare, api, 2.0).await);
        r.push(load(reauth, api, 2.0).await);
    }
    let (b, r) = (median(b), median(r));
    println!(
        "\n{TASKS} tasks for 2 s, a fixed token: bare reqwest {b:.0} requests/s, reauth-reqwest {r:.0} requests/s ({:.2}× fewer)",
        b / r
    );

    // The round trips, measured now: a request, and a refresh (a fresh login's token).
    let http = reqwest::Client::new();
    let started = Instant::now();
    reauth.get(api).await;
    let request_rtt = started.elapsed();
    let token = common::login(url).await;
    let started = Instant::now();
    let refreshed = http
        .post(format!("{url}/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                token.refresh_token.as_ref().expect("rt").expose(),
            ),
        ])
        .send()
        .await
        .expect("refresh");
    assert_eq!(refreshed.status(), 200);
    let refresh_rtt = started.elapsed();

    // The storm: every task's first success that started after the revocation.
    let stop = Arc::new(AtomicBool::new(false));
    let epoch = Instant::now();
    let revoked_at = Arc::new(AtomicU64::new(u64::MAX));
    let recovered: Arc<Vec<AtomicU64>> = Arc::new((0..TASKS).map(|_| AtomicU64::new(0)).collect());
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let (client, api, stop) = (reauth.clone(), format!("{api}/{}", t % 16), stop.clone());
        let (revoked_at, recovered) = (revoked_at.clone(), recovered.clone());
        handles.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let began = epoch.elapsed().as_micros() as u64;
                client.get(&api).await;
                if began >= revoked_at.load(Ordering::SeqCst)
                    && recovered[t].load(Ordering::SeqCst) == 0
                {
                    recovered[t].store(epoch.elapsed().as_micros() as u64, Ordering::SeqCst);
                }
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    revoked_at.store(epoch.elapsed().as_micros() as u64, Ordering::SeqCst);
    let revoked = http
        .post(format!("{url}/admin/revoke-access"))
        .send()
        .await
        .expect("revoke");
    assert!(revoked.status().is_success());
    let revoke_sent = revoked_at.load(Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.await.expect("task");
    }
    let last = recovered
        .iter()
        .map(|r| r.load(Ordering::SeqCst))
        .max()
        .unwrap_or(0);
    let all = recovered.iter().all(|r| r.load(Ordering::SeqCst) > 0);
    // Under the load a round trip is longer than idle: 64 tasks / requests per second.
    let loaded_ms = TASKS as f64 / r * 1000.0;
    let outcome = if all {
        "all recovered"
    } else {
        "NOT all recovered"
    };
    println!(
        "401 storm under {TASKS} tasks: every task succeeded again {:.1} ms after the revocation ({outcome}); \
         idle round trips: refresh {:.2} ms, request {:.2} ms; a request round trip under this load: {loaded_ms:.2} ms",
        (last.saturating_sub(revoke_sent)) as f64 / 1000.0,
        refresh_rtt.as_secs_f64() * 1000.0,
        request_rtt.as_secs_f64() * 1000.0,
    );
}
