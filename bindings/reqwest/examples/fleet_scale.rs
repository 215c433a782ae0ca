//! What a shared store costs a Rust worker: the time a refresh spends on the store (lock,
//! read, save, release; no token call), per store, and the memory of one worker holding
//! 10 000 grants (stores and adapters). The Python twin is `tests/fleet/scale.py`.
//!
//!     cargo run --release -p reauth-reqwest --features postgres,redis --example fleet_scale -- PG_URL REDIS_URL
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant, SystemTime};

use reauth::Secret;
use reauth_reqwest::{CredentialStore, PostgresStores, Reauth, RedisStores, StoredCredentials};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn median_ms(n: usize, mut f: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[n / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (pg_url, redis_url) = (
        args.next().expect("PG_URL"),
        args.next().expect("REDIS_URL"),
    );
    let grants: usize = args.next().map_or(10_000, |g| g.parse().unwrap());
    let creds = StoredCredentials {
        access_token: Secret::new("a".repeat(40)),
        refresh_token: Some(Secret::new("r".repeat(40))),
        expires_at: Some(SystemTime::now() + Duration::from_secs(3600)),
    };
    let pg = PostgresStores::connect(&pg_url).unwrap();
    let rd = RedisStores::connect(&redis_url).unwrap();
    let cycle = |s: &dyn CredentialStore| {
        let _guard = s.lock().unwrap();
        s.load().unwrap();
        s.save(&creds).unwrap();
    };
    let (p, r) = (
        pg.grant("scale-rust-pg").unwrap(),
        rd.grant("scale-rust-redis").unwrap(),
    );
    for _ in 0..20 {
        cycle(&p);
        cycle(&r);
    }
    println!("{:52} {:>10}", "what (Rust)", "median ms");
    println!(
        "{:52} {:10.3}",
        "PostgreSQL store: lock, read, save, release",
        median_ms(300, || cycle(&p))
    );
    println!(
        "{:52} {:10.3}",
        "Redis store: lock, read, save, release",
        median_ms(300, || cycle(&r))
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = rss_kib();
    let stores: Vec<_> = (0..grants)
        .map(|i| pg.grant(&format!("scale-{i}")).unwrap())
        .collect();
    let with_stores = rss_kib();
    let token_client = reqwest::Client::new();
    let adapters: Vec<Reauth> = runtime.block_on(async {
        stores
            .into_iter()
            .map(|s| {
                Reauth::builder("http://127.0.0.1:9/oauth/token", "c")
                    .store(s)
                    .flight_recorder(0)
                    .token_client(token_client.clone())
                    .build()
                    .unwrap()
            })
            .collect()
    });
    let with_adapters = rss_kib();
    println!(
        "Rust worker memory: {} B per grant's store, {} B per grant's adapter; {grants} grants = {:.1} MiB",
        (with_stores - base) * 1024 / grants as u64,
        (with_adapters - with_stores) * 1024 / grants as u64,
        (with_adapters - base) as f64 / 1024.0
    );
    drop(adapters);
}
