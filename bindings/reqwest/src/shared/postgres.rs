//! [`PostgresStores`]: one row per grant in a PostgreSQL table (the schema of the Python
//! package's `reauth.postgres`); a refresh holds a transaction-scoped advisory lock on
//! a connection of its own. PostgreSQL releases it when the transaction ends or the
//! connection dies (a killed worker), and ends a holder's session that stays silent for
//! `lock_ttl` (`idle_in_transaction_session_timeout`: a worker cut off from the
//! database); waiting for it is bounded by `lock_wait` (`lock_timeout`).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use super::{Backend, Fleet, IO_TIMEOUT, Io, Shared, unavailable};
use crate::store::StoredCredentials;

/// The default table.
pub const TABLE: &str = "reauth_credentials";

/// A connection pool to one PostgreSQL database, shared by every grant of the process:
/// [`grant`](PostgresStores::grant) gives one grant's store.
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// let stores = reauth_reqwest::PostgresStores::connect("postgresql://app@db/app")?;
/// let store = stores.grant("customer-42")?;
/// // reauth_reqwest::Reauth::builder(token_url, client_id).store(store)…
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStores(Fleet<Pg>);

impl std::fmt::Debug for PostgresStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStores")
            .field("table", &self.0.backend().table)
            .finish_non_exhaustive()
    }
}

struct Pg {
    pool: Pool,
    table: String,
}

impl PostgresStores {
    /// Connects to `url` (a libpq connection string or URL; it never appears in errors)
    /// and creates the table if it does not exist.
    pub fn connect(url: &str) -> io::Result<Self> {
        Self::connect_table(url, TABLE)
    }

    /// [`connect`](Self::connect) with a table of another name (letters, digits, `_`).
    pub fn connect_table(url: &str, table: &str) -> io::Result<Self> {
        if table.is_empty()
            || table.len() > 63
            || !table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || table.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the table name must be 1 to 63 ASCII letters, digits or _, not starting with a digit",
            ));
        }
        let mut config: tokio_postgres::Config = url.parse().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a PostgreSQL connection string",
            )
        })?;
        // An unreachable or silent database is an error within seconds, not a hang.
        config
            .connect_timeout(IO_TIMEOUT)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(5))
            .keepalives_interval(Duration::from_secs(2))
            .keepalives_retries(2);
        #[cfg(target_os = "linux")]
        config.tcp_user_timeout(IO_TIMEOUT);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let io = Arc::new(Io::new()?);
        let pool = Pool::builder(manager)
            .max_size(16)
            .wait_timeout(Some(IO_TIMEOUT))
            .create_timeout(Some(IO_TIMEOUT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(io::Error::other)?;
        let fleet = Fleet::new(
            Pg {
                pool,
                table: table.to_owned(),
            },
            io,
        );
        // Under a lock: two workers creating the table at once can otherwise collide in
        // the catalog (a unique violation on pg_type) although both say IF NOT EXISTS.
        let create = format!(
            "BEGIN; SELECT pg_advisory_xact_lock(hashtextextended('reauth:schema', 0)); \
             CREATE TABLE IF NOT EXISTS {table} (grant_id text PRIMARY KEY, access_token text, \
             refresh_token text, expires_at double precision, version bigint NOT NULL, \
             updated_at timestamptz NOT NULL DEFAULT now(), lease_owner text, \
             lease_at double precision, lease_until double precision); COMMIT"
        );
        let b = fleet.backend_arc();
        fleet.io().run(IO_TIMEOUT * 2, async move {
            let client = b.client("(setup)").await?;
            client
                .batch_execute(&create)
                .await
                .map_err(|e| pg_error("(setup)", e))
        })?;
        Ok(PostgresStores(fleet))
    }

    /// The lock timings of the grants' stores made after this call: how long a lock
    /// waits for a sibling's refresh (default 30 s), and how long it outlives a holder
    /// that stopped answering (default 40 s; it must exceed `wait` and the adapter's
    /// refresh deadline).
    pub fn lock_timing(self, wait: Duration, ttl: Duration) -> io::Result<Self> {
        Ok(PostgresStores(self.0.lock_timing(wait, ttl)?))
    }

    /// One grant's store.
    pub fn grant(&self, grant_id: &str) -> io::Result<PostgresStore> {
        Ok(PostgresStore(self.0.grant(grant_id)?))
    }
}

/// One grant's credentials in PostgreSQL. `Debug` names the grant, never the tokens.
pub struct PostgresStore(Shared<Pg>);

super::grant_store!(PostgresStore, Pg);

/// Failures of the connection, not of the statement, are "unavailable" (retryable);
/// the rest (a missing table, a type) are said as they are. Never a parameter's text.
fn pg_error(grant: &str, e: tokio_postgres::Error) -> io::Error {
    let code = e.code().cloned();
    let io = std::error::Error::source(&e).is_some_and(|s| s.is::<io::Error>());
    if e.is_closed()
        || io
        || code.as_ref().is_some_and(|c| {
            c.code().starts_with("08")
                || c.code().starts_with("57P")
                || *c == SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT
        })
    {
        return unavailable(grant, "PostgreSQL", e);
    }
    if code.as_ref() == Some(&SqlState::LOCK_NOT_AVAILABLE) {
        return io::Error::new(
            io::ErrorKind::TimedOut,
            format!("grant {grant:?}: another worker held the lock for longer than lock_wait"),
        );
    }
    // The server's message (never its detail, which can quote a row's values).
    let message = e
        .as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_owned());
    io::Error::other(format!("grant {grant:?}: PostgreSQL: {message}"))
}

impl Pg {
    /// Under the advisory lock: waits while the row holds a live lease written before the
    /// database started (a holder whose session a restart ended, still saving), then
    /// writes this holder's lease, committed on a pooled connection of its own — it must
    /// outlive the lock's transaction if a restart ends that.
    async fn lease(
        &self,
        grant: &str,
        held: &Object,
        wait: Duration,
        ttl: Duration,
    ) -> io::Result<String> {
        let live = format!(
            "SELECT lease_until > {NOW} AND lease_at < extract(epoch from pg_postmaster_start_time()) \
             FROM {} WHERE grant_id = $1 AND lease_owner IS NOT NULL",
            self.table
        );
        let until = std::time::Instant::now() + wait;
        loop {
            let row = held
                .query_opt(&live, &[&grant])
                .await
                .map_err(|e| pg_error(grant, e))?;
            if row.is_none_or(|r| r.try_get::<_, Option<bool>>(0).ok().flatten() != Some(true)) {
                break;
            }
            if std::time::Instant::now() >= until {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "grant {grant:?}: a refresh cut off by a database restart still held the grant after lock_wait"
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let lease = super::fence();
        let take = format!(
            "INSERT INTO {t} AS c (grant_id, version, lease_owner, lease_at, lease_until) \
             VALUES ($1, 0, $2, {NOW}, {NOW} + $3) ON CONFLICT (grant_id) DO UPDATE SET \
             lease_owner = excluded.lease_owner, lease_at = excluded.lease_at, \
             lease_until = excluded.lease_until",
            t = self.table
        );
        let client = self.client(grant).await?;
        client
            // It outlives the holder's whole save window: its call (shorter than the
            // ttl) and then a save retried for the ttl.
            .execute(&take, &[&grant, &lease, &(2.0 * ttl.as_secs_f64())])
            .await
            .map_err(|e| pg_error(grant, e))?;
        Ok(lease)
    }

    async fn client(&self, grant: &str) -> io::Result<Object> {
        self.pool
            .get()
            .await
            .map_err(|e| unavailable(grant, "PostgreSQL", e))
    }
}

/// The held lock: its connection, in the transaction that holds it (until a save
/// committed it), and the lease written beside it (until a save cleared it).
pub struct Held {
    /// `None` only once released.
    client: Option<Object>,
    lease: Option<String>,
}

impl Held {
    fn client(&self) -> &Object {
        self.client
            .as_ref()
            .expect("a held lock has its connection until released")
    }
}

impl Drop for Held {
    /// A lock dropped without its release (a call that timed out, a runtime shut down)
    /// closes its connection: back in the pool it would carry an open transaction and
    /// the lock into someone else's statements. Closed, PostgreSQL ends both.
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}

/// The database's clock in seconds since the epoch: leases are compared on it alone.
const NOW: &str = "extract(epoch from clock_timestamp())::float8";

#[async_trait]
impl Backend for Pg {
    type Held = Held;

    async fn acquire(&self, grant: &str, wait: Duration, ttl: Duration) -> io::Result<Held> {
        let client = self.client(grant).await?;
        // SET LOCAL takes no parameters: both values are numbers.
        let begin = format!(
            "BEGIN; SET LOCAL lock_timeout = '{}ms'; SET LOCAL idle_in_transaction_session_timeout = '{}ms'",
            wait.as_millis().max(1),
            ttl.as_millis()
        );
        let taken = async {
            client.batch_execute(&begin).await?;
            client
                .execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                    &[&format!("reauth:{grant}")],
                )
                .await
        }
        .await;
        let leased = match taken {
            Ok(_) => self.lease(grant, &client, wait, ttl).await,
            Err(e) => Err(pg_error(grant, e)),
        };
        match leased {
            Ok(lease) => Ok(Held {
                client: Some(client),
                lease: Some(lease),
            }),
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK").await;
                Err(e)
            }
        }
    }

    async fn release(&self, grant: &str, mut held: Held) {
        if let Some(client) = held.client.take()
            && client.batch_execute("ROLLBACK").await.is_err()
        {
            // Broken: closing it releases the lock too.
            drop(Object::take(client));
        }
        if let Some(lease) = held.lease.take() {
            // Not saved through the lock: the lease goes too (if the database is down,
            // it expires on its own).
            let clear = format!(
                "UPDATE {} SET lease_owner = NULL WHERE grant_id = $1 AND lease_owner = $2",
                self.table
            );
            if let Ok(client) = self.client(grant).await {
                let _ = client.execute(&clear, &[&grant, &lease]).await;
            }
        }
    }

    async fn read(
        &self,
        grant: &str,
        held: Option<&mut Held>,
    ) -> io::Result<(Option<StoredCredentials>, u64)> {
        let query = format!(
            "SELECT access_token, refresh_token, expires_at, version FROM {} WHERE grant_id = $1",
            self.table
        );
        let pooled;
        let client = match held {
            Some(h) => h.client(),
            None => {
                pooled = self.client(grant).await?;
                &pooled
            }
        };
        let row = client
            .query_opt(&query, &[&grant])
            .await
            .map_err(|e| pg_error(grant, e))?;
        let Some(row) = row else {
            return Ok((None, 0));
        };
        let what = format!("{}: grant {grant:?}", self.table);
        // A table of that name with other column types is said, not a panic.
        let wrong = |_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{what}: the table's columns are not reauth's (text, text, double precision, bigint)"
                ),
            )
        };
        let version: i64 = row.try_get(3).map_err(wrong)?;
        let credentials = super::credentials(
            &what,
            row.try_get(0).map_err(wrong)?,
            row.try_get(1).map_err(wrong)?,
            row.try_get(2).map_err(wrong)?,
        )?;
        Ok((credentials, u64::try_from(version).unwrap_or(0)))
    }

    async fn write(
        &self,
        grant: &str,
        held: Option<&mut Held>,
        credentials: Option<&StoredCredentials>,
        expect: Option<u64>,
    ) -> io::Result<Option<u64>> {
        let mut upsert = format!(
            "INSERT INTO {t} AS c (grant_id, access_token, refresh_token, expires_at, version) \
             VALUES ($1, $2, $3, $4, 1) ON CONFLICT (grant_id) DO UPDATE SET \
             access_token = excluded.access_token, refresh_token = excluded.refresh_token, \
             expires_at = excluded.expires_at, version = c.version + 1, updated_at = now(), \
             lease_owner = NULL ",
            t = self.table
        );
        let access = credentials.map(|c| c.access_token.expose().to_owned());
        let refresh =
            credentials.and_then(|c| c.refresh_token.as_ref().map(|r| r.expose().to_owned()));
        let expires = credentials.and_then(|c| c.expires_at.map(super::to_seconds));
        let expect = expect.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        if expect.is_some() {
            upsert.push_str("WHERE c.version = $5 ");
        }
        upsert.push_str("RETURNING version");
        let pooled;
        let (client, mut lease) = match held {
            Some(Held { client, lease }) => (
                client
                    .as_ref()
                    .expect("a held lock has its connection until released"),
                Some(lease),
            ),
            None => {
                pooled = self.client(grant).await?;
                (&pooled, None)
            }
        };
        let in_transaction = lease.is_some();
        let row = match &expect {
            Some(v) => {
                client
                    .query_opt(&upsert, &[&grant, &access, &refresh, &expires, v])
                    .await
            }
            None => {
                client
                    .query_opt(&upsert, &[&grant, &access, &refresh, &expires])
                    .await
            }
        }
        .map_err(|e| pg_error(grant, e))?;
        if in_transaction {
            // Durable before anything else happens; this ends the transaction and the
            // lock with it, which is what comes next anyway (a save is the last thing a
            // refresh or a login does under the lock).
            client
                .batch_execute("COMMIT")
                .await
                .map_err(|e| pg_error(grant, e))?;
            if row.is_some()
                && let Some(lease) = lease.as_mut()
            {
                **lease = None; // the save cleared it
            }
        }
        match row {
            None => Ok(None),
            Some(r) => r
                .try_get::<_, i64>(0)
                .map(|v| Some(u64::try_from(v).unwrap_or(0)))
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: version is not a bigint", self.table),
                    )
                }),
        }
    }
}
