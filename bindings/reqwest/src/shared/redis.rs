//! [`RedisStores`]: one hash per grant (`reauth:cred:{grant}`: the tokens, the wall-clock
//! expiry, a version) and one lock key (`reauth:lock:{grant}`) taken with `SET NX PX`
//! and a random fencing value, released only by its holder (a script compares the value)
//! and expiring on its own `lock_ttl` after a holder died or was cut off — the keys and
//! scripts of the Python package's `reauth.redis`.
//!
//! Redis must keep what it acknowledged across a restart (`appendonly yes`,
//! `appendfsync always`): a restart that forgets a rotation loses the grant on a server
//! with reuse detection.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};

use super::{Backend, Fleet, IO_TIMEOUT, Io, Shared, unavailable};
use crate::store::StoredCredentials;

/// The default key prefix.
pub const PREFIX: &str = "reauth:";

// KEYS[1] the grant's hash; ARGV: expected version ("" for any), "set" or "clear",
// access, refresh, "1" if there is a refresh token, expires_at ("" for none). The new
// version, or -1 if the version was not the expected one.
const WRITE: &str = r"
local v = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if v == nil or v < 0 or v ~= math.floor(v) or v >= 2^53 then
  return redis.error_reply('reauth: the version field is not a count')
end
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= v then return -1 end
redis.call('DEL', KEYS[1])
if ARGV[2] == 'set' then
  redis.call('HSET', KEYS[1], 'access_token', ARGV[3])
  if ARGV[5] == '1' then redis.call('HSET', KEYS[1], 'refresh_token', ARGV[4]) end
  if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'expires_at', ARGV[6]) end
end
redis.call('HSET', KEYS[1], 'version', v + 1)
return v + 1
";

// Deletes the lock only if it still holds this holder's value.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// A connection to one Redis, shared by every grant of the process (the redis crate's
/// multiplexed connection manager, which reconnects on its own):
/// [`grant`](RedisStores::grant) gives one grant's store.
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// let stores = reauth_reqwest::RedisStores::connect("redis://cache:6379/0")?;
/// let store = stores.grant("customer-42")?;
/// // reauth_reqwest::Reauth::builder(token_url, client_id).store(store)…
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStores(Fleet<Rd>);

impl std::fmt::Debug for RedisStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStores")
            .field("prefix", &self.0.backend().prefix)
            .finish_non_exhaustive()
    }
}

struct Rd {
    connection: ConnectionManager,
    prefix: String,
    write: Script,
    release: Script,
}

impl RedisStores {
    /// Connects to `url` (`redis://host:port/db`; it never appears in errors).
    pub fn connect(url: &str) -> io::Result<Self> {
        Self::connect_prefix(url, PREFIX)
    }

    /// [`connect`](Self::connect) with another key prefix.
    pub fn connect_prefix(url: &str, prefix: &str) -> io::Result<Self> {
        let client = redis::Client::open(url)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "not a Redis URL"))?;
        let io = Arc::new(Io::new()?);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(IO_TIMEOUT))
            .set_response_timeout(Some(IO_TIMEOUT))
            .set_number_of_retries(1);
        let connection = io.run(IO_TIMEOUT * 2, async move {
            ConnectionManager::new_with_config(client, config)
                .await
                .map_err(|e| unavailable("(setup)", "Redis", e))
        })?;
        let backend = Rd {
            connection,
            prefix: prefix.to_owned(),
            write: Script::new(WRITE),
            release: Script::new(RELEASE),
        };
        Ok(RedisStores(Fleet::new(backend, io)))
    }

    /// The lock timings of the grants' stores made after this call (see
    /// [`PostgresStores::lock_timing`](crate::PostgresStores)): defaults 30 s and 40 s.
    pub fn lock_timing(self, wait: Duration, ttl: Duration) -> io::Result<Self> {
        Ok(RedisStores(self.0.lock_timing(wait, ttl)?))
    }

    /// One grant's store.
    pub fn grant(&self, grant_id: &str) -> io::Result<RedisStore> {
        Ok(RedisStore(self.0.grant(grant_id)?))
    }
}

/// One grant's credentials in Redis. `Debug` names the grant, never the tokens.
pub struct RedisStore(Shared<Rd>);

super::grant_store!(RedisStore, Rd);

/// The held lock's fencing value.
pub struct Held(String);

fn rd_error(grant: &str, e: redis::RedisError) -> io::Error {
    if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() {
        unavailable(grant, "Redis", e)
    } else {
        io::Error::other(format!("grant {grant:?}: Redis: {e}"))
    }
}

impl Rd {
    fn key(&self, kind: &str, grant: &str) -> String {
        format!("{}{kind}:{grant}", self.prefix)
    }
}

#[async_trait]
impl Backend for Rd {
    type Held = Held;

    async fn acquire(&self, grant: &str, wait: Duration, ttl: Duration) -> io::Result<Held> {
        let key = self.key("lock", grant);
        let value = super::fence();
        let until = Instant::now() + wait;
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let mut c = self.connection.clone();
        loop {
            let taken: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(&value)
                .arg("NX")
                .arg("PX")
                .arg(ttl_ms)
                .query_async(&mut c)
                .await
                .map_err(|e| rd_error(grant, e))?;
            if taken.is_some() {
                return Ok(Held(value));
            }
            if Instant::now() >= until {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "grant {grant:?}: another worker held the lock for longer than lock_wait"
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn release(&self, grant: &str, held: Held) {
        let mut c = self.connection.clone();
        let _: Result<i64, _> = self
            .release
            .key(self.key("lock", grant))
            .arg(held.0)
            .invoke_async(&mut c)
            .await;
    }

    async fn read(
        &self,
        grant: &str,
        _held: Option<&mut Held>,
    ) -> io::Result<(Option<StoredCredentials>, u64)> {
        let key = self.key("cred", grant);
        let mut c = self.connection.clone();
        let fields: std::collections::HashMap<String, Vec<u8>> =
            c.hgetall(&key).await.map_err(|e| rd_error(grant, e))?;
        let text = |name: &str| -> io::Result<Option<String>> {
            fields
                .get(name)
                .map(|b| {
                    String::from_utf8(b.clone()).map_err(|_| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{key}: not a reauth credentials hash"),
                        )
                    })
                })
                .transpose()
        };
        let version = match text("version")? {
            None => 0,
            Some(v) => v.parse::<u64>().map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{key}: version is not a number"),
                )
            })?,
        };
        let expires_at = match text("expires_at")? {
            None => None,
            Some(s) => Some(s.parse::<f64>().map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{key}: expires_at is not a number"),
                )
            })?),
        };
        let credentials = super::credentials(
            &key,
            text("access_token")?,
            text("refresh_token")?,
            expires_at,
        )?;
        Ok((credentials, version))
    }

    async fn write(
        &self,
        grant: &str,
        _held: Option<&mut Held>,
        credentials: Option<&StoredCredentials>,
        expect: Option<u64>,
    ) -> io::Result<Option<u64>> {
        let mut invocation = self.write.key(self.key("cred", grant));
        invocation.arg(expect.map_or_else(String::new, |v| v.to_string()));
        match credentials {
            None => {
                invocation.arg("clear").arg("").arg("").arg("0").arg("");
            }
            Some(c) => {
                invocation
                    .arg("set")
                    .arg(c.access_token.expose())
                    .arg(c.refresh_token.as_ref().map_or("", |r| r.expose()))
                    .arg(if c.refresh_token.is_some() { "1" } else { "0" })
                    .arg(
                        c.expires_at
                            .map_or_else(String::new, |at| super::to_seconds(at).to_string()),
                    );
            }
        }
        let mut c = self.connection.clone();
        let written: i64 = invocation
            .invoke_async(&mut c)
            .await
            .map_err(|e| rd_error(grant, e))?;
        Ok(u64::try_from(written).ok())
    }
}
