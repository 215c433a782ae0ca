"""Credentials of many grants in one PostgreSQL table, shared by a fleet of workers.

::

    from psycopg_pool import ConnectionPool
    from reauth.postgres import PostgresStore, create_table, pool_options

    pool = ConnectionPool("postgresql://app@db/app", kwargs=pool_options(), open=True)
    create_table(pool)
    auth = ReauthAuth(token_url, client_id, store=PostgresStore(pool, "customer-42"))

One row per grant (``reauth_credentials``, created by :func:`create_table`). A refresh runs
under a transaction-scoped advisory lock keyed by the grant, on a connection held for the
refresh: PostgreSQL releases it when the transaction ends or the connection dies (a
killed worker), and ends a holder's session that stays silent for ``lock_ttl`` seconds (a
worker cut off from the database), so a lock never outlives its holder by more than that.
Waiting for it is bounded by ``lock_wait`` (PostgreSQL's ``lock_timeout``). Each row has a
version; a save under the lock writes only if it is the version the lock's load read.

A database restart ends every session, and with them the locks of refreshes whose token
call is still under way: their holders are alive and will save the rotation once the
database is back. So the holder also writes a lease into the row (committed on its own,
cleared by its save or its release), and the next holder that finds a live lease
written *before the database started* waits for it (within ``lock_wait``) instead of
presenting a refresh token that may just have been rotated. A lease written since the
start belongs to a holder that died or was cut off — its session ended without a
restart — and is passed over at once, so a killed worker still frees the grant at once.

Needs ``pip install 'reauth[postgres]'`` (psycopg 3 and psycopg-pool).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional

import psycopg
from psycopg import errors, sql
from psycopg_pool import ConnectionPool, PoolTimeout

from ._shared import (
    DEFAULT_LOCK_TTL,
    DEFAULT_LOCK_WAIT,
    LockTimeout,
    SharedStore,
    StaleWrite,
    StoreUnavailable,
    finite_or_none,
)
from .store import StoredCredentials

__all__ = ["PostgresStore", "create_table", "pool_options", "StoreUnavailable", "LockTimeout", "StaleWrite"]

TABLE = "reauth_credentials"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS {table} (
    grant_id      text PRIMARY KEY,
    access_token  text,
    refresh_token text,
    expires_at    double precision,
    version       bigint NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    lease_owner   text,
    lease_at      double precision,
    lease_until   double precision
)
"""

# The database's clock, in seconds since the epoch (leases are compared on it alone).
_NOW = "extract(epoch from clock_timestamp())::float8"


def pool_options(connect_timeout: int = 5) -> Dict[str, Any]:
    """Connection settings that turn an unreachable or silent database into an error
    within seconds instead of a hang: a connect timeout, TCP keepalives and a TCP user
    timeout (a send that is not acknowledged — a network partition — fails)."""
    return {
        "connect_timeout": connect_timeout,
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 2,
        "tcp_user_timeout": connect_timeout * 1000,
        "autocommit": True,
    }


def create_table(pool: ConnectionPool, table: str = TABLE) -> None:
    """Creates the table if it does not exist (idempotent; safe from every worker: it
    takes no lock on an existing table — never run an ``ALTER TABLE`` on it while workers
    hold grants, its lock waits for every refresh under way and stops every other)."""
    with pool.connection() as conn:
        # In a transaction under a lock: two workers creating the table at once can
        # otherwise collide in the catalog although both say IF NOT EXISTS.
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('reauth:schema', 0))")
            conn.execute(sql.SQL(_SCHEMA).format(table=sql.Identifier(table)))


#: The bound of one statement's answer, in seconds (the lock's own wait excepted).
IO_TIMEOUT = 5.0


@contextmanager
def _bounded(conn: psycopg.Connection, seconds: float) -> Iterator[None]:
    """Bounds what runs inside by ``seconds``: psycopg has no read timeout, and a server
    that still acknowledges TCP but never answers (hung, stopped) would hold the call
    forever. Past the bound the socket is shut down, so the call fails with an
    OperationalError (StoreUnavailable) and the connection is discarded."""

    def cut() -> None:
        try:
            fd = os.dup(conn.pgconn.socket)
        except (OSError, psycopg.Error):
            return
        try:
            with socket.socket(fileno=fd) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    timer = threading.Timer(seconds, cut)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


# Failures of the connection, not of the statement: the database is down, restarting or
# cut off. Anything else (a missing table, a wrong type) is raised as it is.
_UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, errors.IdleInTransactionSessionTimeout, PoolTimeout)


def _unavailable(e: BaseException, grant: str) -> StoreUnavailable:
    return StoreUnavailable(f"grant {grant!r}: PostgreSQL unavailable ({type(e).__name__})")


class PostgresStore(SharedStore):
    """One grant's credentials in a PostgreSQL table; ``repr`` names the grant, never the
    tokens. ``pool`` is a :class:`psycopg_pool.ConnectionPool` shared by every grant of
    the process (its connections in autocommit mode: see :func:`pool_options`)."""

    def __init__(
        self,
        pool: ConnectionPool,
        grant_id: str,
        *,
        table: str = TABLE,
        lock_wait: float = DEFAULT_LOCK_WAIT,
        lock_ttl: float = DEFAULT_LOCK_TTL,
    ) -> None:
        super().__init__(grant_id, lock_wait, lock_ttl)
        if not isinstance(pool, ConnectionPool):
            raise TypeError(f"pool must be a psycopg_pool.ConnectionPool, not {type(pool).__name__}")
        if not (getattr(pool, "kwargs", None) or {}).get("autocommit"):
            # Its statements end their own transactions; in a pool that opens implicit
            # ones, a save would be rolled back when its connection went back.
            raise ValueError("the pool's connections must be in autocommit mode: "
                             "ConnectionPool(..., kwargs=reauth.postgres.pool_options())")
        if pool.max_size < 2:
            raise ValueError("the pool needs max_size >= 2: a refresh holds one connection "
                             "for its lock and writes its lease on another")
        self._pool = pool
        self._table = sql.Identifier(table)
        self._held: Optional[psycopg.Connection] = None
        self._lease: Optional[str] = None

    def __repr__(self) -> str:
        return f"PostgresStore(grant_id={self.grant_id!r})"

    # ----- the lock: a transaction holding an advisory lock ---------------------------

    def _acquire(self) -> None:
        # One deadline for every step: the pool, the lock, a lease from before a restart.
        deadline = time.monotonic() + self.lock_wait

        def left() -> float:
            return max(0.001, deadline - time.monotonic())

        try:
            conn = self._pool.getconn(timeout=left())
        except PoolTimeout as e:
            raise _unavailable(e, self.grant_id) from None
        try:
            with _bounded(conn, left() + IO_TIMEOUT):
                conn.execute("BEGIN")
                # SET LOCAL takes no parameters; both values are numbers.
                conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(f"{int(left() * 1000)}ms")))
                conn.execute(sql.SQL("SET LOCAL idle_in_transaction_session_timeout = {}").format(
                    sql.Literal(f"{int(self.lock_ttl * 1000)}ms")))
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"reauth:{self.grant_id}",))
                self._wait_for_lease(conn, deadline)
            self._take_lease(left())
        except errors.LockNotAvailable:
            self._give_back(conn)
            raise LockTimeout(f"grant {self.grant_id!r}: another worker held the lock for over {self.lock_wait} s") from None
        except BaseException as e:
            self._give_back(conn)
            if isinstance(e, _UNAVAILABLE):
                raise _unavailable(e, self.grant_id) from None
            raise
        self._held = conn

    def _wait_for_lease(self, conn: psycopg.Connection, deadline: float) -> None:
        """Waits while the row holds a live lease written before the database started
        (a holder whose session a restart ended, still saving): LockTimeout at
        ``deadline``."""
        query = sql.SQL(
            "SELECT lease_until > {now} AND lease_at < extract(epoch from pg_postmaster_start_time()) "
            "FROM {t} WHERE grant_id = %s AND lease_owner IS NOT NULL"
        ).format(now=sql.SQL(_NOW), t=self._table)
        while True:
            row = conn.execute(query, (self.grant_id,)).fetchone()
            if not (row and row[0]):
                return
            if time.monotonic() >= deadline:
                raise errors.LockNotAvailable("a lease from before the restart is still live")
            time.sleep(0.02)

    def _take_lease(self, wait: float) -> None:
        """The lease, committed on its own (on a pooled connection): it must outlive this
        transaction if a restart ends it."""
        self._lease = f"{os.getpid()}-{uuid.uuid4().hex}"
        with self._pool.connection(timeout=wait) as conn, _bounded(conn, IO_TIMEOUT):
            conn.execute(
                sql.SQL(
                    "INSERT INTO {t} AS c (grant_id, version, lease_owner, lease_at, lease_until) "
                    "VALUES (%s, 0, %s, {now}, {now} + %s) ON CONFLICT (grant_id) DO UPDATE SET "
                    "lease_owner = excluded.lease_owner, lease_at = excluded.lease_at, "
                    "lease_until = excluded.lease_until"
                ).format(t=self._table, now=sql.SQL(_NOW)),
                (self.grant_id, self._lease, 2 * self.lock_ttl),
            )

    def _release(self) -> None:
        conn, self._held = self._held, None
        lease, self._lease = self._lease, None
        if conn is not None:
            self._give_back(conn)
        if lease is not None:
            # Not saved (a failed or adopted-less attempt): the lease goes too. If the
            # database is down it expires on its own.
            try:
                with self._pool.connection(timeout=min(self.lock_wait, IO_TIMEOUT)) as c, _bounded(c, IO_TIMEOUT):
                    c.execute(sql.SQL("UPDATE {t} SET lease_owner = NULL WHERE grant_id = %s AND lease_owner = %s")
                              .format(t=self._table), (self.grant_id, lease))
            except (*_UNAVAILABLE, psycopg.Error):
                pass

    def _give_back(self, conn: psycopg.Connection) -> None:
        """Ends the transaction (releasing the lock) and returns the connection; a broken
        one is closed, which releases the lock too."""
        try:
            with _bounded(conn, IO_TIMEOUT):
                conn.execute("ROLLBACK")  # after a save's COMMIT: a warning, nothing to end
        except psycopg.Error:
            conn.close()
        self._pool.putconn(conn)

    # ----- reads and writes -------------------------------------------------------------

    @contextmanager
    def _conn(self, locked: bool, fresh: bool = False) -> Iterator[psycopg.Connection]:
        """The lock's connection under the lock, a new one (``fresh``: a save retried
        after a restart must not wait for the pool's reconnection backoff), else one from
        the pool; what runs on it is bounded by ``IO_TIMEOUT``."""
        if locked and self._held is not None and not self._held.closed:
            with _bounded(self._held, IO_TIMEOUT):
                yield self._held
            return
        if fresh:
            kwargs = dict(self._pool.kwargs or {})
            kwargs.setdefault("connect_timeout", int(IO_TIMEOUT))
            with psycopg.connect(self._pool.conninfo, **kwargs) as conn, _bounded(conn, IO_TIMEOUT):
                yield conn
            return
        with self._pool.connection(timeout=min(self.lock_wait, IO_TIMEOUT)) as conn, _bounded(conn, IO_TIMEOUT):
            yield conn

    def _read(self, locked: bool):
        try:
            with self._conn(locked) as conn:
                row = conn.execute(
                    sql.SQL("SELECT access_token, refresh_token, expires_at, version FROM {} WHERE grant_id = %s")
                    .format(self._table),
                    (self.grant_id,),
                ).fetchone()
        except _UNAVAILABLE as e:
            raise _unavailable(e, self.grant_id) from None
        if row is None:
            return None, 0
        access, refresh, expires_at, version = row
        if access is None:
            return None, version
        if not isinstance(access, str) or not access:
            raise ValueError(f"{TABLE}: grant {self.grant_id!r}: access_token must be a non-empty string")
        return StoredCredentials(access, refresh, finite_or_none(expires_at, "expires_at")), version

    def _write(
        self, credentials: Optional[StoredCredentials], expect: Optional[int], locked: bool, fresh: bool = False
    ) -> Optional[int]:
        if credentials is None:
            values = (None, None, None)
        else:
            values = (credentials.access_token, credentials.refresh_token,
                      finite_or_none(credentials.expires_at, "expires_at"))
        upsert = sql.SQL(
            "INSERT INTO {t} AS c (grant_id, access_token, refresh_token, expires_at, version) "
            "VALUES (%s, %s, %s, %s, 1) "
            "ON CONFLICT (grant_id) DO UPDATE SET access_token = excluded.access_token, "
            "refresh_token = excluded.refresh_token, expires_at = excluded.expires_at, "
            "version = c.version + 1, updated_at = now(), lease_owner = NULL "
        ).format(t=self._table)
        params: tuple = (self.grant_id, *values)
        if expect is not None:
            upsert += sql.SQL("WHERE c.version = %s ")
            params += (expect,)
        upsert += sql.SQL("RETURNING version")
        try:
            with self._conn(locked, fresh) as conn:
                row = conn.execute(upsert, params).fetchone()
                if locked:
                    # Durable before anything else happens: this ends the transaction
                    # and with it the lock, which is what comes next anyway (a save is
                    # the last thing a refresh or a login does under the lock).
                    conn.execute("COMMIT")
        except _UNAVAILABLE as e:
            raise _unavailable(e, self.grant_id) from None
        if row is None:
            return None  # a newer version was stored
        if locked or self._lease is not None:
            self._lease = None  # the save cleared it
        return row[0]
