//! Stores shared by a fleet of workers on many machines: PostgreSQL ([`PostgresStores`],
//! feature `postgres`) and Redis ([`RedisStores`], feature `redis`) — the same tables,
//! keys and protocol as the Python package's `reauth.postgres` and `reauth.redis`, so
//! Rust and Python workers can share one grant.
//!
//! The contract's recipe (§12.2) across machines: a refresh runs under the grant's lock in
//! the database, which a worker that dies or is cut off gives up on its own within
//! `lock_ttl`; every stored grant has a version each write increments, and a save under
//! the lock writes only if the version is still the one the lock's load read — a worker
//! whose lock expired cannot overwrite a newer rotation ([`stale_write`] errors). A save
//! that fails on the connection (a database restart) is retried, with the same check, for
//! up to `lock_ttl`: the server has rotated, so the rotation must reach the store if it can.
//!
//! Within one process, a `load` or `save` made while the grant's lock is held acts as the
//! holder's (the adapter calls them from tokio's blocking pool, on any thread, so the
//! store cannot tell callers apart by thread as the Python store does): the adapter only
//! reads and writes a shared store under its lock — a login whose lock fails stores
//! nothing — and only `clear` (a logout) writes without it.
//!
//! [`CredentialStore`] is synchronous (the adapter calls it from tokio's blocking pool).
//! These stores run their I/O on a small runtime of their own, with the ecosystem's async
//! clients (tokio-postgres with a deadpool pool, the redis crate's connection manager),
//! and bound every call by a timeout: an unreachable database is an error within
//! seconds, never a hang.

use std::future::Future;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use reauth::Secret;

use crate::store::{CredentialStore, StoredCredentials};

#[cfg(feature = "postgres")]
pub use postgres::{PostgresStore, PostgresStores};
#[cfg(feature = "redis")]
pub use redis::{RedisStore, RedisStores};

/// How long a lock waits for a sibling's refresh by default: the core's default refresh
/// deadline (`Config::refresh_timeout_ms`), after which nobody waits.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(30);
/// How long the fleet's lock outlives a holder that stopped answering by default: longer
/// than the default refresh deadline, so a live refresh never loses its lock.
pub const DEFAULT_LOCK_TTL: Duration = Duration::from_secs(40);
/// The bound of one read or write (connecting included).
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The message of the error a save under an expired lock returns.
const STALE: &str =
    "a newer version was stored since this worker read it (its lock expired?); nothing written";

/// Whether `e` is the error of a save refused because a newer version was stored.
pub fn stale_write(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Other && e.to_string().contains(STALE)
}

pub(crate) fn unavailable(grant: &str, what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        format!("grant {grant:?}: {what} unavailable ({e})"),
    )
}

/// The I/O of one kind of database; [`Shared`] does the bookkeeping.
#[async_trait]
pub(crate) trait Backend: Send + Sync + 'static {
    /// A held lock (and what its holder reads and writes through).
    type Held: Send + 'static;
    /// Takes the grant's lock within `wait`; it expires `ttl` after its holder fell silent.
    async fn acquire(&self, grant: &str, wait: Duration, ttl: Duration) -> io::Result<Self::Held>;
    /// Gives it back (best effort: it expires on its own).
    async fn release(&self, grant: &str, held: Self::Held);
    /// What is stored and its version (0 if never stored).
    async fn read(
        &self,
        grant: &str,
        held: Option<&mut Self::Held>,
    ) -> io::Result<(Option<StoredCredentials>, u64)>;
    /// Writes (`None` clears) if the version is `expect` (any if `None`): the new
    /// version, or `None` if it was not `expect`.
    async fn write(
        &self,
        grant: &str,
        held: Option<&mut Self::Held>,
        credentials: Option<&StoredCredentials>,
        expect: Option<u64>,
    ) -> io::Result<Option<u64>>;
}

/// The runtime the stores' I/O runs on, shared by every grant of a connection.
pub(crate) struct Io {
    runtime: Option<tokio::runtime::Runtime>,
}

impl Io {
    pub(crate) fn new() -> io::Result<Io> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("reauth-store")
            .enable_all()
            .build()?;
        Ok(Io {
            runtime: Some(runtime),
        })
    }

    /// Runs `f` on the store's runtime and waits for it (from any thread, inside an async
    /// runtime or not), `limit` at most.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        limit: Duration,
        f: impl Future<Output = io::Result<T>> + Send + 'static,
    ) -> io::Result<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let Some(runtime) = &self.runtime else {
            return Err(io::Error::other("the store was dropped"));
        };
        runtime.spawn(async move {
            let _ = tx.send(tokio::time::timeout(limit, f).await);
        });
        match rx.recv() {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the store did not answer within {limit:?}"),
            )),
            Err(_) => Err(io::Error::other("the store's runtime stopped")),
        }
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which is refused inside another runtime.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// What a connection to one database gives every grant's store: the backend, the
/// runtime, the lock timings.
pub(crate) struct Fleet<B: Backend> {
    backend: Arc<B>,
    io: Arc<Io>,
    wait: Duration,
    ttl: Duration,
}

impl<B: Backend> Clone for Fleet<B> {
    fn clone(&self) -> Self {
        Fleet {
            backend: Arc::clone(&self.backend),
            io: Arc::clone(&self.io),
            wait: self.wait,
            ttl: self.ttl,
        }
    }
}

impl<B: Backend> Fleet<B> {
    pub(crate) fn new(backend: B, io: Arc<Io>) -> Self {
        Fleet {
            backend: Arc::new(backend),
            io,
            wait: DEFAULT_LOCK_WAIT,
            ttl: DEFAULT_LOCK_TTL,
        }
    }

    pub(crate) fn backend(&self) -> &B {
        &self.backend
    }

    pub(crate) fn backend_arc(&self) -> Arc<B> {
        Arc::clone(&self.backend)
    }

    pub(crate) fn io(&self) -> &Io {
        &self.io
    }

    pub(crate) fn lock_timing(mut self, wait: Duration, ttl: Duration) -> io::Result<Self> {
        check_timing(wait, ttl)?;
        self.wait = wait;
        self.ttl = ttl;
        Ok(self)
    }

    pub(crate) fn grant(&self, grant_id: &str) -> io::Result<Shared<B>> {
        Shared::new(
            Arc::clone(&self.backend),
            Arc::clone(&self.io),
            grant_id,
            self.wait,
            self.ttl,
        )
    }
}

/// A public store type over `Shared<backend>`: `Debug` naming the grant (never a token),
/// `lock_ttl`, and the [`CredentialStore`] calls.
macro_rules! grant_store {
    ($name:ident, $backend:ty) => {
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("grant_id", &self.0.grant())
                    .finish()
            }
        }

        impl $name {
            /// How long the lock outlives a holder that stopped answering.
            pub fn lock_ttl(&self) -> std::time::Duration {
                self.0.lock_ttl()
            }
        }

        impl $crate::store::CredentialStore for $name {
            fn load(&self) -> std::io::Result<Option<$crate::store::StoredCredentials>> {
                self.0.load()
            }
            fn save(&self, credentials: &$crate::store::StoredCredentials) -> std::io::Result<()> {
                self.0.save(credentials)
            }
            fn clear(&self) -> std::io::Result<()> {
                self.0.clear()
            }
            fn lock(&self) -> std::io::Result<Box<dyn Send>> {
                self.0.lock()
            }
            fn lock_ttl(&self) -> Option<std::time::Duration> {
                Some(self.0.lock_ttl())
            }
        }
    };
}
pub(crate) use grant_store;

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why)
}

/// A grant id: what both languages accept.
fn check_grant(grant: &str) -> io::Result<()> {
    if grant.is_empty() || grant.len() > 200 {
        return Err(invalid("grant_id must be 1 to 200 bytes long".into()));
    }
    if grant.contains(['\0', '\r', '\n']) {
        return Err(invalid("grant_id must not contain NUL, CR or LF".into()));
    }
    Ok(())
}

/// Lock timings: checked like every other config.
fn check_timing(wait: Duration, ttl: Duration) -> io::Result<()> {
    let range = Duration::from_millis(1)..=Duration::from_secs(3600);
    for (name, value) in [("lock_wait", wait), ("lock_ttl", ttl)] {
        if !range.contains(&value) {
            return Err(invalid(format!(
                "{name} must be within 1 ms..=3600 s, not {value:?}"
            )));
        }
    }
    if ttl <= wait {
        return Err(invalid(format!(
            "lock_ttl ({ttl:?}) must exceed lock_wait ({wait:?}): a refresh must never outlive the lock it holds"
        )));
    }
    Ok(())
}

struct Local<H> {
    /// This process's lock of the grant is taken (by a guard alive somewhere).
    locked: bool,
    /// The fleet's lock, while held.
    held: Option<H>,
    /// The version the lock's load read; `None` before one (a save then writes over
    /// whatever is there: a login's fresh credentials).
    read_version: Option<u64>,
}

/// One grant's store over a [`Backend`].
pub(crate) struct Shared<B: Backend> {
    backend: Arc<B>,
    io: Arc<Io>,
    grant: Arc<str>,
    wait: Duration,
    ttl: Duration,
    local: Arc<(Mutex<Local<B::Held>>, Condvar)>,
}

impl<B: Backend> Shared<B> {
    pub(crate) fn new(
        backend: Arc<B>,
        io: Arc<Io>,
        grant: &str,
        wait: Duration,
        ttl: Duration,
    ) -> io::Result<Self> {
        check_grant(grant)?;
        check_timing(wait, ttl)?;
        Ok(Shared {
            backend,
            io,
            grant: grant.into(),
            wait,
            ttl,
            local: Arc::new((
                Mutex::new(Local {
                    locked: false,
                    held: None,
                    read_version: None,
                }),
                Condvar::new(),
            )),
        })
    }

    pub(crate) fn grant(&self) -> &str {
        &self.grant
    }

    pub(crate) fn lock_ttl(&self) -> Duration {
        self.ttl
    }

    fn state(&self) -> MutexGuard<'_, Local<B::Held>> {
        self.local.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `op` with the held lock (if any) moved out of the state and back.
    fn with_held<T: Send + 'static>(
        &self,
        limit: Duration,
        op: impl FnOnce(Arc<B>, Arc<str>, Option<B::Held>) -> OpFuture<T, B::Held>,
    ) -> io::Result<(T, bool)> {
        let held = self.state().held.take();
        let holding = held.is_some();
        let fut = op(Arc::clone(&self.backend), Arc::clone(&self.grant), held);
        let (result, held) = self.io.run(limit, async move { Ok(fut.await) })?;
        if let Some(held) = held {
            self.state().held = Some(held);
        }
        result.map(|t| (t, holding))
    }

    fn store(&self, credentials: StoredCredentials) -> io::Result<()> {
        let expect = {
            let s = self.state();
            // Under the lock even if its connection was lost meanwhile (a timed-out
            // read): the write stays a compare-and-set on what the lock's load read.
            if s.locked { s.read_version } else { None }
        };
        let deadline = Instant::now() + self.ttl;
        let pause = Duration::from_millis(50);
        let mut tries = 0;
        let mut written = loop {
            let c = credentials.clone();
            // A retry goes through a new connection: the held one failed.
            let use_held = tries == 0;
            tries += 1;
            let attempt = self.with_held(IO_TIMEOUT, move |backend, grant, held| {
                Box::pin(async move {
                    let mut held = held;
                    let through = if use_held { held.as_mut() } else { None };
                    let r = backend.write(&grant, through, Some(&c), expect).await;
                    (r, held)
                })
            });
            match attempt {
                Ok((written, _)) => break written,
                Err(e) if retryable(&e) && Instant::now() + pause < deadline => {
                    // Short and steady: the first moment the database is back, this save
                    // should land before a sibling (whose lock attempts failed meanwhile)
                    // reads the store.
                    std::thread::sleep(pause);
                }
                Err(e) => return Err(e),
            }
        };
        if written.is_none() && tries > 1 {
            // A retried write that finds another version may have found its own: the
            // first try's reply was lost after it landed.
            let (backend, grant) = (Arc::clone(&self.backend), Arc::clone(&self.grant));
            if let Ok((Some(stored), version)) = self
                .io
                .run(IO_TIMEOUT, async move { backend.read(&grant, None).await })
                && stored == credentials
            {
                written = Some(version);
            }
        }
        let Some(version) = written else {
            return Err(io::Error::other(format!(
                "grant {:?}: {STALE} (read version {})",
                self.grant,
                expect.unwrap_or(0)
            )));
        };
        let mut s = self.state();
        if s.locked {
            s.read_version = Some(version);
        }
        Ok(())
    }
}

type OpFuture<T, H> =
    std::pin::Pin<Box<dyn Future<Output = (io::Result<T>, Option<H>)> + Send + 'static>>;

fn retryable_connection(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::ConnectionAborted
}

fn retryable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::TimedOut
    )
}

/// Releases the fleet's lock and this process's when dropped.
struct Guard<B: Backend> {
    backend: Arc<B>,
    io: Arc<Io>,
    grant: Arc<str>,
    local: Arc<(Mutex<Local<B::Held>>, Condvar)>,
}

impl<B: Backend> Drop for Guard<B> {
    fn drop(&mut self) {
        let held = {
            let mut s = self.local.0.lock().unwrap_or_else(|p| p.into_inner());
            s.read_version = None;
            s.held.take()
        };
        if let Some(held) = held {
            let backend = Arc::clone(&self.backend);
            let grant = Arc::clone(&self.grant);
            let _ = self.io.run(IO_TIMEOUT, async move {
                backend.release(&grant, held).await;
                Ok(())
            });
        }
        let (mutex, freed) = &*self.local;
        mutex.lock().unwrap_or_else(|p| p.into_inner()).locked = false;
        freed.notify_one();
    }
}

impl<B: Backend> CredentialStore for Shared<B> {
    fn load(&self) -> io::Result<Option<StoredCredentials>> {
        let ((credentials, version), holding) =
            self.with_held(IO_TIMEOUT, |backend, grant, held| {
                Box::pin(async move {
                    let mut held = held;
                    let r = backend.read(&grant, held.as_mut()).await;
                    (r, held)
                })
            })?;
        if holding {
            self.state().read_version = Some(version);
        }
        Ok(credentials)
    }

    fn save(&self, credentials: &StoredCredentials) -> io::Result<()> {
        self.store(credentials.clone())
    }

    /// Clears the grant for the whole fleet (a logout ends the grant, not a worker).
    fn clear(&self) -> io::Result<()> {
        let backend = Arc::clone(&self.backend);
        let grant = Arc::clone(&self.grant);
        self.io
            .run(IO_TIMEOUT, async move {
                backend.write(&grant, None, None, None).await
            })
            .map(|_| ())
    }

    fn lock(&self) -> io::Result<Box<dyn Send>> {
        let start = Instant::now();
        {
            let (mutex, freed) = &*self.local;
            let mut s = mutex.lock().unwrap_or_else(|p| p.into_inner());
            while s.locked {
                let left = self.wait.saturating_sub(start.elapsed());
                if left.is_zero() {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "grant {:?}: this process's lock was not free within {:?}",
                            self.grant, self.wait
                        ),
                    ));
                }
                s = freed
                    .wait_timeout(s, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            s.locked = true;
            s.read_version = None;
        }
        let guard = Guard {
            backend: Arc::clone(&self.backend),
            io: Arc::clone(&self.io),
            grant: Arc::clone(&self.grant),
            local: Arc::clone(&self.local),
        };
        let wait = self.wait.saturating_sub(start.elapsed());
        let backend = Arc::clone(&self.backend);
        let grant = Arc::clone(&self.grant);
        let ttl = self.ttl;
        // The guard gives this process's lock back if taking the fleet's fails.
        // Again on a failed connection while the wait lasts: after a restart a pool
        // hands out connections the server already closed, one by one.
        let held = self.io.run(wait + IO_TIMEOUT, async move {
            let until = Instant::now() + wait;
            loop {
                let left = until.saturating_duration_since(Instant::now());
                match backend.acquire(&grant, left, ttl).await {
                    Err(e) if retryable_connection(&e) && !left.is_zero() => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    taken => return taken,
                }
            }
        })?;
        self.state().held = Some(held);
        Ok(Box::new(guard))
    }
}

/// A holder's fencing value: its process id first (who holds a grant is readable in the
/// database), then what makes it unique.
pub(crate) fn fence() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{nanos:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// Seconds since the epoch as stored (negative before it).
pub(crate) fn to_seconds(at: SystemTime) -> f64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_secs_f64(),
        Err(before) => -before.duration().as_secs_f64(),
    }
}

/// A stored expiry back to wall-clock time; `None` if it is not a finite number.
pub(crate) fn from_seconds(s: f64) -> Option<SystemTime> {
    if !s.is_finite() || s.abs() > 1e12 {
        return None;
    }
    let d = Duration::from_secs_f64(s.abs());
    if s >= 0.0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    }
}

pub(crate) fn credentials(
    what: &str,
    access: Option<String>,
    refresh: Option<String>,
    expires_at: Option<f64>,
) -> io::Result<Option<StoredCredentials>> {
    let Some(access) = access else {
        return Ok(None);
    };
    let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {why}"));
    if access.is_empty() {
        return Err(invalid("access_token must be a non-empty string"));
    }
    let expires_at = match expires_at {
        None => None,
        Some(s) => {
            Some(from_seconds(s).ok_or_else(|| invalid("expires_at must be a finite number"))?)
        }
    };
    Ok(Some(StoredCredentials {
        access_token: Secret::new(access),
        refresh_token: refresh.map(Secret::new),
        expires_at,
    }))
}

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
