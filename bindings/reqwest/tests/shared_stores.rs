//! The PostgreSQL and Redis stores (features `postgres`, `redis`) against real servers,
//! started by `./scripts/test` (`REAUTH_POSTGRES_URL`, `REAUTH_REDIS_URL`): each failure
//! mode — a holder killed, a lock expired mid-refresh, the database unreachable — loses
//! no rotation and waits no longer than its bound. The Python package's tests run the
//! same cases on the same tables and keys; the fleet test mixes both languages.
#![cfg(all(feature = "postgres", feature = "redis"))]
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reauth::Secret;
use reauth_reqwest::shared::stale_write;
use reauth_reqwest::{CredentialStore, PostgresStores, RedisStores, StoredCredentials};

fn url(kind: &str) -> String {
    let var = if kind == "postgres" {
        "REAUTH_POSTGRES_URL"
    } else {
        "REAUTH_REDIS_URL"
    };
    std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is not set: ./scripts/test starts the servers"))
}

fn store(
    kind: &str,
    url: &str,
    grant: &str,
    wait: Duration,
    ttl: Duration,
) -> Box<dyn CredentialStore> {
    if kind == "postgres" {
        let stores = PostgresStores::connect(url)
            .unwrap()
            .lock_timing(wait, ttl)
            .unwrap();
        Box::new(stores.grant(grant).unwrap())
    } else {
        let stores = RedisStores::connect(url)
            .unwrap()
            .lock_timing(wait, ttl)
            .unwrap();
        Box::new(stores.grant(grant).unwrap())
    }
}

fn grant() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "rust-test-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn creds(i: u32) -> StoredCredentials {
    StoredCredentials {
        access_token: Secret::new(format!("secret-access-{i}")),
        refresh_token: Some(Secret::new(format!("secret-refresh-{i}"))),
        expires_at: Some(UNIX_EPOCH + Duration::from_millis(1_900_000_000_250)),
    }
}

const S: Duration = Duration::from_secs(1);

#[test]
fn round_trip_many_grants_no_token_in_debug() {
    for kind in ["postgres", "redis"] {
        let u = url(kind);
        let (g1, g2) = (grant(), grant());
        let s1 = store(kind, &u, &g1, S, 2 * S);
        let s2 = store(kind, &u, &g2, S, 2 * S);
        assert_eq!(s1.load().unwrap(), None);
        s1.save(&creds(1)).unwrap();
        let only = StoredCredentials {
            access_token: Secret::new("secret-only"),
            refresh_token: None,
            expires_at: None,
        };
        s2.save(&only).unwrap();
        assert_eq!(s1.load().unwrap(), Some(creds(1)));
        assert_eq!(
            store(kind, &u, &g1, S, 2 * S).load().unwrap(),
            Some(creds(1))
        );
        assert_eq!(s2.load().unwrap(), Some(only));
        if kind == "postgres" {
            let d = format!(
                "{:?}",
                PostgresStores::connect(&u).unwrap().grant(&g1).unwrap()
            );
            assert!(
                d.contains(&g1) && !d.contains("secret") && !d.contains("127.0.0.1"),
                "{d}"
            );
        }
        s1.clear().unwrap();
        assert_eq!(s1.load().unwrap(), None);
        assert!(s2.load().unwrap().is_some());
    }
}

#[test]
fn bad_grants_timings_and_urls_are_refused() {
    let u = url("redis");
    let stores = RedisStores::connect(&u).unwrap();
    for bad in ["", "a\nb", "a\rb", "a\0b", &"x".repeat(201)] {
        assert!(stores.grant(bad).is_err(), "{bad:?}");
    }
    for (wait, ttl) in [
        (S, S),
        (S, Duration::ZERO),
        (Duration::from_secs(4000), Duration::from_secs(5000)),
    ] {
        assert!(
            RedisStores::connect(&u)
                .unwrap()
                .lock_timing(wait, ttl)
                .is_err()
        );
    }
    let e = PostgresStores::connect("postgresql://user:hunter2@[").unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert!(PostgresStores::connect_table(&url("postgres"), "x; DROP TABLE y").is_err());
}

#[tokio::test]
async fn the_adapter_refuses_a_lock_shorter_than_the_refresh_deadline() {
    let u = url("redis");
    let stores = RedisStores::connect(&u)
        .unwrap()
        .lock_timing(S, 5 * S)
        .unwrap();
    let config = |ms| {
        let mut c = reauth::Config::default();
        c.refresh_timeout_ms = ms;
        c
    };
    let build = |ms| {
        reauth_reqwest::Reauth::builder("http://127.0.0.1:9/oauth/token", "c")
            .config(config(ms))
            .store(stores.grant(&grant()).unwrap())
            .build()
    };
    let Err(e) = build(5_000) else {
        panic!("a lock shorter than the refresh deadline was accepted")
    };
    assert!(e.to_string().contains("lock_ttl"), "{e}");
    build(4_000).unwrap();
}

/// The child of `a_worker_killed_holding_the_lock_releases_it`: takes the lock, says so,
/// waits to be killed.
#[test]
fn holder_child() {
    let (Ok(kind), Ok(g)) = (std::env::var("HOLDER_KIND"), std::env::var("HOLDER_GRANT")) else {
        return; // run as a test of its own: nothing to hold
    };
    let s = store(&kind, &url(&kind), &g, S, 2 * S);
    let _guard = s.lock().unwrap();
    s.load().unwrap();
    println!("locked");
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn a_worker_killed_holding_the_lock_releases_it() {
    for kind in ["postgres", "redis"] {
        let g = grant();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "holder_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("HOLDER_KIND", kind)
            .env("HOLDER_GRANT", &g)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert!(lines.any(|l| l.unwrap().contains("locked")));
        let s = store(kind, &url(kind), &g, 4 * S, 5 * S);
        // Held: a try within the wait fails.
        let quick = store(kind, &url(kind), &g, Duration::from_millis(300), 5 * S);
        let start = Instant::now();
        assert!(quick.lock().is_err());
        assert!(start.elapsed() < 2 * S);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let start = Instant::now();
        let guard = s.lock().unwrap();
        let waited = start.elapsed();
        // PostgreSQL sees the connection close at once; the Redis key expires (ttl 2 s).
        let bound = if kind == "postgres" {
            Duration::from_millis(800)
        } else {
            2 * S + Duration::from_millis(800)
        };
        assert!(waited < bound, "{kind}: waited {waited:?}");
        s.save(&creds(2)).unwrap();
        drop(guard);
        assert_eq!(s.load().unwrap(), Some(creds(2)));
    }
}

#[test]
fn a_lock_that_expired_mid_refresh_cannot_overwrite_a_newer_rotation() {
    for kind in ["postgres", "redis"] {
        let u = url(kind);
        let g = grant();
        let slow = store(kind, &u, &g, S, Duration::from_millis(1500));
        let fast = store(kind, &u, &g, 3 * S, 5 * S);
        slow.save(&creds(1)).unwrap();
        let held = slow.lock().unwrap();
        assert_eq!(slow.load().unwrap(), Some(creds(1)));
        std::thread::sleep(Duration::from_millis(1600)); // a slow token endpoint
        {
            let _sibling = fast.lock().unwrap();
            assert_eq!(fast.load().unwrap(), Some(creds(1)));
            fast.save(&creds(2)).unwrap();
        }
        let e = slow.save(&creds(3)).unwrap_err();
        assert!(stale_write(&e), "{kind}: {e}");
        drop(held);
        assert_eq!(fast.load().unwrap(), Some(creds(2)));
    }
}

#[test]
fn an_unreachable_database_is_a_clear_error_within_its_bound() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let start = Instant::now();
    let e = RedisStores::connect(&format!("redis://127.0.0.1:{port}/0")).unwrap_err();
    assert!(e.to_string().contains("unavailable"), "{e}");
    let pg = PostgresStores::connect(&format!("postgresql://reauth@127.0.0.1:{port}/reauth"))
        .unwrap_err();
    assert!(pg.to_string().contains("unavailable"), "{pg}");
    assert!(start.elapsed() < 12 * S, "{:?}", start.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stores_can_be_called_from_inside_a_runtime() {
    // build() and login() are synchronous and may run on a runtime thread: the store's
    // own runtime must not nest in it.
    for kind in ["postgres", "redis"] {
        let s = store(kind, &url(kind), &grant(), S, 2 * S);
        let _g = s.lock().unwrap();
        s.save(&creds(7)).unwrap();
        assert_eq!(s.load().unwrap(), Some(creds(7)));
    }
}

#[test]
fn a_restart_mid_refresh_loses_no_rotation() {
    // The database restarts while a refresh's token call is under way: a sibling that
    // starts its refresh right then must not read the old refresh token before the
    // holder's save, retried across the restart, lands (PostgreSQL: the holder's lease
    // from before the start; Redis: the lock key, kept by the append-only file).
    for kind in ["postgres", "redis"] {
        let var = format!("REAUTH_{}_RESTART", kind.to_uppercase());
        let restart = std::env::var(&var)
            .unwrap_or_else(|_| panic!("{var} is not set: ./scripts/test sets it"));
        let u = url(kind);
        let g = grant();
        let holder = store(kind, &u, &g, 3 * S, 8 * S);
        holder.save(&creds(1)).unwrap();
        let guard = holder.lock().unwrap();
        assert_eq!(holder.load().unwrap(), Some(creds(1)));
        assert!(Command::new(&restart).status().unwrap().success());
        let (u2, g2) = (u.clone(), g.clone());
        let sibling = std::thread::spawn(move || {
            let s = store(kind, &u2, &g2, 6 * S, 8 * S);
            let _g = s.lock().unwrap();
            s.load().unwrap()
        });
        std::thread::sleep(Duration::from_millis(500)); // the sibling is back first
        assert!(
            !sibling.is_finished(),
            "{kind}: the sibling did not wait for the holder"
        );
        holder.save(&creds(2)).unwrap();
        drop(guard);
        assert_eq!(sibling.join().unwrap(), Some(creds(2)), "{kind}");
    }
}

#[test]
fn the_python_stores_speak_the_same_protocol() {
    // The two languages share one table and one keyspace: the Redis write script must be
    // the same text, and the PostgreSQL table the same columns (the fleet test mixes the
    // languages on one store; this says which side drifted).
    let rust_redis = include_str!("../src/shared/redis.rs");
    let python_redis = include_str!("../../python/python/reauth/redis.py");
    let script = |text: &str, open: &str, close: &str| {
        let start = text.find(open).expect("the write script") + open.len();
        text[start..start + text[start..].find(close).expect("its end")]
            .trim()
            .to_owned()
    };
    assert_eq!(
        script(rust_redis, "const WRITE: &str = r\"", "\";"),
        script(python_redis, "_WRITE = \"\"\"", "\"\"\""),
        "the Redis write script differs between bindings/reqwest and bindings/python"
    );
    let rust_pg = include_str!("../src/shared/postgres.rs");
    let python_pg = include_str!("../../python/python/reauth/postgres.py");
    for column in [
        "grant_id text PRIMARY KEY",
        "access_token text",
        "refresh_token text",
        "expires_at double precision",
        "version bigint NOT NULL",
        "lease_owner text",
        "lease_at double precision",
        "lease_until double precision",
        "pg_advisory_xact_lock(hashtextextended(",
        "reauth:schema",
    ] {
        let squeeze = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            squeeze(rust_pg).contains(column),
            "Rust PostgreSQL store: {column}"
        );
        assert!(
            squeeze(python_pg).contains(column),
            "Python PostgreSQL store: {column}"
        );
    }
}
