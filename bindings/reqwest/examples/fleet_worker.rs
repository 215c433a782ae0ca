//! A fleet worker in Rust: many grants, one shared store (PostgreSQL or Redis),
//! concurrent requests — the twin of `tests/fleet/worker.py`, run by
//! `tests/fleet/fleet.py` with one argument, the same JSON config. Every 0.25 s (and at
//! the end) it writes its counts to `out`; SIGUSR1 makes its next refresh stall holding
//! the lock (after reading the store, before calling the server) and write
//! `out + ".stalled"`, where the orchestrator kills it.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reauth::Config;
use reauth_reqwest::{
    CredentialStore, PostgresStores, Reauth, RedisStores, RequestFailed, StoredCredentials,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Cfg {
    server: String,
    store: String,
    store_url: String,
    grants: Vec<String>,
    concurrency: usize,
    seconds: f64,
    out: String,
    lock_wait: f64,
    lock_ttl: f64,
    refresh_timeout_ms: u64,
    no_lock: bool,
}

type Counts = Arc<Mutex<BTreeMap<String, u64>>>;

fn count(counts: &Counts, key: String) {
    *counts.lock().unwrap().entry(key).or_default() += 1;
}

/// Until when the next refresh under the lock stalls (SIGUSR1 sets it 5 s ahead).
type Stall = Arc<Mutex<Option<Instant>>>;

/// The store with the stall the orchestrator asks for, and (`no_lock`) without its
/// fleet lock: the deliberate fault that must show reuse detections.
struct Stalling {
    inner: Box<dyn CredentialStore>,
    holding: Arc<AtomicUsize>,
    stall: Stall,
    out: String,
    no_lock: bool,
}

struct Holding(Arc<AtomicUsize>);

impl Drop for Holding {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl CredentialStore for Stalling {
    fn load(&self) -> io::Result<Option<StoredCredentials>> {
        let loaded = self.inner.load()?;
        let asked = self
            .stall
            .lock()
            .unwrap()
            .is_some_and(|until| Instant::now() < until);
        if asked && self.holding.load(Ordering::SeqCst) > 0 {
            std::fs::File::create(format!("{}.stalled", self.out))?;
            std::thread::sleep(Duration::from_secs(3600)); // killed here, holding the lock
        }
        Ok(loaded)
    }
    fn save(&self, credentials: &StoredCredentials) -> io::Result<()> {
        self.inner.save(credentials)
    }
    fn clear(&self) -> io::Result<()> {
        self.inner.clear()
    }
    fn lock(&self) -> io::Result<Box<dyn Send>> {
        let guard: Box<dyn Send> = if self.no_lock {
            Box::new(())
        } else {
            self.inner.lock()?
        };
        self.holding.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new((Holding(Arc::clone(&self.holding)), guard)))
    }
    fn lock_ttl(&self) -> Option<Duration> {
        self.inner.lock_ttl()
    }
}

/// `NotLoggedIn` → `not_logged_in`, as the Python worker names reasons.
fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn report(cfg: &Cfg, counts: &Counts) {
    let body = serde_json::json!({
        "pid": std::process::id(),
        "lang": "rust",
        "counts": *counts.lock().unwrap(),
    });
    let tmp = format!("{}.tmp", cfg.out);
    std::fs::write(&tmp, body.to_string()).unwrap();
    std::fs::rename(&tmp, &cfg.out).unwrap();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: fleet_worker CONFIG.json");
    let cfg: Arc<Cfg> =
        Arc::new(serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap());
    let counts: Counts = Arc::default();
    let stall: Stall = Arc::default();
    {
        let stall = Arc::clone(&stall);
        let mut usr1 =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1()).unwrap();
        tokio::spawn(async move {
            while usr1.recv().await.is_some() {
                *stall.lock().unwrap() = Some(Instant::now() + Duration::from_secs(5));
            }
        });
    }
    let (wait, ttl) = (
        Duration::from_secs_f64(cfg.lock_wait),
        Duration::from_secs_f64(cfg.lock_ttl),
    );
    let sep = if cfg.store_url.contains('?') {
        '&'
    } else {
        '?'
    };
    let named = format!(
        "{}{sep}application_name=fleet-{}",
        cfg.store_url,
        std::process::id()
    );
    let url = cfg.store_url.clone();
    let (pg, rd) = if cfg.store == "postgres" {
        let s = tokio::task::spawn_blocking(move || PostgresStores::connect(&named))
            .await
            .unwrap();
        (Some(s.unwrap().lock_timing(wait, ttl).unwrap()), None)
    } else {
        let s = tokio::task::spawn_blocking(move || RedisStores::connect(&url))
            .await
            .unwrap();
        (None, Some(s.unwrap().lock_timing(wait, ttl).unwrap()))
    };
    let mut config = Config::default();
    config.refresh_timeout_ms = cfg.refresh_timeout_ms;
    config.max_retries = 8;
    config.max_backoff_ms = 2_000;
    config.initial_backoff_ms = 200;
    let token_client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut clients = Vec::new();
    let mut adapters = Vec::new();
    for grant in &cfg.grants {
        let inner: Box<dyn CredentialStore> = match (&pg, &rd) {
            (Some(pg), _) => Box::new(pg.grant(grant).unwrap()),
            (_, Some(rd)) => Box::new(rd.grant(grant).unwrap()),
            _ => unreachable!(),
        };
        let store = Stalling {
            inner,
            holding: Arc::default(),
            stall: Arc::clone(&stall),
            out: cfg.out.clone(),
            no_lock: cfg.no_lock,
        };
        let seen = Arc::clone(&counts);
        // build() restores the session from the store: a blocking read, off the runtime.
        let builder = Reauth::builder(format!("{}/oauth/token", cfg.server), "fleet")
            .config(config.clone())
            .store(store)
            .token_client(token_client.clone())
            .flight_recorder(0)
            .on_logout(move |ended| {
                count(
                    &seen,
                    format!("logout:{}", snake(&format!("{:?}", ended.reason))),
                )
            });
        let reauth = tokio::task::block_in_place(|| builder.build()).unwrap();
        clients.push(
            reqwest_middleware::ClientBuilder::new(http.clone())
                .with(reauth.clone())
                .build(),
        );
        adapters.push(reauth);
    }
    let clients = Arc::new(clients);
    let stop_at = Instant::now() + Duration::from_secs_f64(cfg.seconds);
    let mut tasks = Vec::new();
    for seed in 0..cfg.concurrency {
        let (clients, counts, cfg) = (Arc::clone(&clients), Arc::clone(&counts), Arc::clone(&cfg));
        tasks.push(tokio::spawn(async move {
            let mut x =
                0x9E37_79B9_7F4A_7C15_u64 ^ (seed as u64 + 1) ^ u64::from(std::process::id());
            while Instant::now() < stop_at {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let client = &clients[(x % clients.len() as u64) as usize];
                let key = match client.get(format!("{}/api/fleet", cfg.server)).send().await {
                    Ok(r) if r.status() == 200 => "ok".to_owned(),
                    Ok(r) => format!("status:{}", r.status().as_u16()),
                    Err(reqwest_middleware::Error::Middleware(e)) => {
                        match e.downcast_ref::<RequestFailed>() {
                            Some(f) => format!("failed:{}", snake(&format!("{:?}", f.reason))),
                            None => format!("error:{e}"),
                        }
                    }
                    Err(reqwest_middleware::Error::Reqwest(_)) => "transport:reqwest".to_owned(),
                };
                count(&counts, key);
            }
        }));
    }
    let reporter = {
        let (cfg, counts) = (Arc::clone(&cfg), Arc::clone(&counts));
        tokio::spawn(async move {
            loop {
                report(&cfg, &counts);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    for t in tasks {
        t.await.unwrap();
    }
    reporter.abort();
    for a in &adapters {
        a.close();
    }
    report(&cfg, &counts);
}
