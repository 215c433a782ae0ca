"""The PostgreSQL and Redis stores (reauth.postgres, reauth.redis) against real servers.

``./scripts/test`` starts both on loopback and sets ``REAUTH_POSTGRES_URL`` and
``REAUTH_REDIS_URL`` (with ``REAUTH_REQUIRE_SERVERS=1``, so a missing server fails here
instead of skipping). Each failure mode of the issue has a test: the database down or
silent (a partition), a lock that expired mid-refresh, a worker killed holding the lock —
none loses a rotation, none waits past its bound.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from typing import Callable, Iterator

import pytest

from reauth import Config
from reauth._shared import LockTimeout, StaleWrite, StoreUnavailable
from reauth.store import StoredCredentials

PG = os.environ.get("REAUTH_POSTGRES_URL")
REDIS = os.environ.get("REAUTH_REDIS_URL")
if os.environ.get("REAUTH_REQUIRE_SERVERS") == "1":
    assert PG and REDIS, "REAUTH_POSTGRES_URL and REAUTH_REDIS_URL must be set (scripts/test starts the servers)"


def _pg_pool(url: str):
    from psycopg_pool import ConnectionPool

    from reauth.postgres import create_table, pool_options

    pool = ConnectionPool(url, kwargs=pool_options(connect_timeout=2), min_size=1, max_size=8, open=True, timeout=3)
    create_table(pool)
    return pool


def _redis_client(url: str):
    import redis

    from reauth.redis import client_options

    return redis.Redis.from_url(url, **client_options(timeout=2))


class Backend:
    """Builds stores of one kind on one server (or on a proxy in front of it)."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind, self.url = kind, url
        self._closers: list = []

    def store(self, grant: str, url: "str | None" = None, **kw):
        url = url or self.url
        if self.kind == "postgres":
            from reauth.postgres import PostgresStore

            pool = _pg_pool(url)
            self._closers.append(pool.close)
            return PostgresStore(pool, grant, **kw)
        from reauth.redis import RedisStore

        client = _redis_client(url)
        self._closers.append(client.close)
        return RedisStore(client, grant, **kw)

    def close(self) -> None:
        for close in self._closers:
            try:
                close()
            except Exception:
                pass


@pytest.fixture(params=["postgres", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    url = PG if request.param == "postgres" else REDIS
    if not url:
        pytest.skip(f"no {request.param} server (set REAUTH_POSTGRES_URL / REAUTH_REDIS_URL)")
    b = Backend(request.param, url)
    yield b
    b.close()


def grant() -> str:
    return f"test-{uuid.uuid4()}"


def creds(i: int, expires_at: "float | None" = None) -> StoredCredentials:
    return StoredCredentials(f"secret-access-{i}", f"secret-refresh-{i}", expires_at)


# A child process that takes a grant's lock, says so, then waits (to be killed or
# stopped). Its arguments: kind, url, grant, lock_ttl.
HOLDER = r"""
import sys, time
kind, url, grant, ttl = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
if kind == "postgres":
    from psycopg_pool import ConnectionPool
    from reauth.postgres import PostgresStore, pool_options
    store = PostgresStore(ConnectionPool(url, kwargs=pool_options(), min_size=1, max_size=2, open=True), grant,
                          lock_wait=ttl / 2, lock_ttl=ttl)
else:
    import redis
    from reauth.redis import RedisStore, client_options
    store = RedisStore(redis.Redis.from_url(url, **client_options()), grant, lock_wait=ttl / 2, lock_ttl=ttl)
with store.lock():
    store.load()
    print("locked", flush=True)
    time.sleep(600)
"""


def hold_in_child(backend: Backend, g: str, ttl: float, url: "str | None" = None) -> subprocess.Popen:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, backend.kind, url or backend.url, g, str(ttl)],
        stdout=subprocess.PIPE, text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "locked"
    return child


def timed(f: Callable[[], object]) -> float:
    start = time.monotonic()
    f()
    return time.monotonic() - start


def test_round_trip_many_grants_and_no_token_in_repr(backend: Backend) -> None:
    g1, g2 = grant(), grant()
    s1, s2 = backend.store(g1), backend.store(g2)
    assert s1.load() is None
    s1.save(creds(1, 1_900_000_000.25))
    s2.save(StoredCredentials("secret-access-only"))
    assert s1.load() == creds(1, 1_900_000_000.25)
    assert s2.load() == StoredCredentials("secret-access-only")
    # Another process's view (another pool / client) reads the same.
    assert backend.store(g1).load() == creds(1, 1_900_000_000.25)
    assert "secret" not in repr(s1) and g1 in repr(s1)
    s1.clear()
    assert s1.load() is None and s2.load() is not None


@pytest.mark.parametrize("bad", ["", "a\nb", "a\rb", "a\x00b", "x" * 201, "\ud800", 7, None])
def test_bad_grant_ids_and_timings_are_refused(backend: Backend, bad: object) -> None:
    with pytest.raises(ValueError if isinstance(bad, str) else (ValueError, TypeError)):
        backend.store(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("kw", [{"lock_wait": 5, "lock_ttl": 5}, {"lock_ttl": float("nan")}, {"lock_wait": -1},
                                {"lock_ttl": 10_000}, {"lock_wait": True}])
def test_absurd_lock_timings_are_refused(backend: Backend, kw: dict) -> None:
    with pytest.raises(ValueError):
        backend.store(grant(), **kw)


def test_a_pool_that_would_lose_saves_is_refused() -> None:
    if not PG:
        pytest.skip("no postgres server (set REAUTH_POSTGRES_URL)")
    from psycopg_pool import ConnectionPool

    from reauth.postgres import PostgresStore, pool_options

    implicit = ConnectionPool(PG, min_size=1, max_size=2, open=False)
    with pytest.raises(ValueError, match="autocommit"):
        PostgresStore(implicit, grant())
    single = ConnectionPool(PG, kwargs=pool_options(), min_size=1, max_size=1, open=False)
    with pytest.raises(ValueError, match="max_size"):
        PostgresStore(single, grant())
    with pytest.raises(TypeError):
        PostgresStore(object(), grant())  # type: ignore[arg-type]


def test_the_adapter_refuses_a_lock_shorter_than_the_refresh_deadline(backend: Backend) -> None:
    from reauth.httpx import ReauthAuth

    store = backend.store(grant(), lock_wait=1, lock_ttl=5)
    with pytest.raises(ValueError, match="lock_ttl"):
        ReauthAuth("http://127.0.0.1:9/oauth/token", "c", store=store, config=Config(refresh_timeout_ms=5_000))
    ReauthAuth("http://127.0.0.1:9/oauth/token", "c", store=store, config=Config(refresh_timeout_ms=4_000)).close()


def test_the_lock_excludes_another_process_and_waiting_is_bounded(backend: Backend) -> None:
    g = grant()
    child = hold_in_child(backend, g, ttl=30)
    try:
        store = backend.store(g, lock_wait=0.5, lock_ttl=30)

        def take() -> None:
            with pytest.raises(LockTimeout):
                with store.lock():
                    pass

        assert 0.45 <= timed(take) < 3
    finally:
        child.kill()
        child.wait()


def test_a_worker_killed_holding_the_lock_releases_it(backend: Backend) -> None:
    g = grant()
    ttl = 2.0
    child = hold_in_child(backend, g, ttl=ttl)
    store = backend.store(g, lock_wait=ttl + 2, lock_ttl=ttl + 3)
    child.send_signal(signal.SIGKILL)
    child.wait()

    def take() -> None:
        with store.lock():
            store.save(creds(2))

    waited = timed(take)
    # PostgreSQL sees the connection close at once; Redis lets the key expire.
    assert waited < (0.5 if backend.kind == "postgres" else ttl + 0.5)
    assert store.load() == creds(2)


def test_a_lock_that_expired_mid_refresh_cannot_overwrite_a_newer_rotation(backend: Backend) -> None:
    g = grant()
    slow = backend.store(g, lock_wait=1, lock_ttl=1.5)
    fast = backend.store(g, lock_wait=3, lock_ttl=5)
    slow.save(creds(1))
    with slow.lock():
        assert slow.load() == creds(1)
        time.sleep(1.6)  # the token endpoint is slow; the lock expires (PostgreSQL ends the session)
        with fast.lock():  # a sibling takes it and rotates
            assert fast.load() == creds(1)
            fast.save(creds(2))
        with pytest.raises(StaleWrite):
            slow.save(creds(3))
    assert fast.load() == creds(2)


def test_a_save_under_the_lock_follows_a_save_under_the_same_lock(backend: Backend) -> None:
    # keep_rotation then the login's save, or a re-entrant lock: versions chain.
    g = grant()
    store = backend.store(g)
    with store.lock():
        store.load()
        store.save(creds(1))
        with store.lock():
            store.save(creds(2))
    assert store.load() == creds(2)


def test_an_unreachable_database_is_a_clear_error_within_its_timeout(backend: Backend) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    dead = backend.url.replace(backend.url.split("@")[-1].split("/")[0] if "@" in backend.url
                               else backend.url.split("//")[1].split("/")[0], f"127.0.0.1:{port}")
    if backend.kind == "postgres":
        from psycopg_pool import ConnectionPool

        from reauth.postgres import PostgresStore, pool_options

        pool = ConnectionPool(dead, kwargs=pool_options(connect_timeout=1), min_size=1, max_size=2, open=False,
                              timeout=1)
        pool.open(wait=False)
        store = PostgresStore(pool, grant(), lock_wait=1, lock_ttl=2)
    else:
        store = backend.store(grant(), url=dead, lock_wait=1, lock_ttl=2)
    for op in (store.load, lambda: store.lock().__enter__()):
        start = time.monotonic()
        with pytest.raises(StoreUnavailable) as e:
            op()
        assert time.monotonic() - start < 3
        assert "unavailable" in str(e.value)
    start = time.monotonic()
    with pytest.raises(StoreUnavailable):
        store.save(creds(1))  # retried for lock_ttl, then given up
    assert time.monotonic() - start < 4


class Blackhole:
    """A TCP proxy that can go silent (a network partition): bytes stop flowing both
    ways and no connection is closed."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.silent = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        while True:
            try:
                data = a.recv(65536)
            except OSError:
                return
            if not data:
                break
            while self.silent.is_set():
                time.sleep(0.05)  # held, never delivered while partitioned
            try:
                b.sendall(data)
            except OSError:
                break
        while self.silent.is_set():
            time.sleep(0.05)  # a close is not delivered during the partition either
        for sock in (a, b):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.listener.close()


def test_a_partitioned_holder_loses_the_lock_and_cannot_write(backend: Backend) -> None:
    """A worker cut off mid-refresh: its siblings get the lock once ``lock_ttl`` ran out
    (PostgreSQL ends the silent session, the Redis key expires), and when it comes back
    its save writes nothing over their newer rotation.

    The proxy holds bytes instead of dropping packets (no packet filter in a container),
    so the cut-off side's own TCP timeouts (``pool_options``, ``client_options``) are not
    what ends its wait here; on a real partition they end it within seconds."""
    port = int(backend.url.split(":")[-1].split("/")[0])
    proxy = Blackhole(port)
    try:
        behind = backend.url.replace(f":{port}/", f":{proxy.port}/")
        g = grant()
        cut_off = backend.store(g, url=behind, lock_wait=1, lock_ttl=2)
        sibling = backend.store(g, lock_wait=5, lock_ttl=6)
        sibling.save(creds(1))
        sibling_done: dict = {}

        def sibling_refreshes() -> None:
            start = time.monotonic()
            with sibling.lock():
                sibling_done["waited"] = time.monotonic() - start
                assert sibling.load() == creds(1)
                sibling.save(creds(2))

        with cut_off.lock():
            assert cut_off.load() == creds(1)
            proxy.silent.set()  # the partition, mid-refresh
            t = threading.Thread(target=sibling_refreshes)
            t.start()
            t.join(10)
            assert not t.is_alive() and "waited" in sibling_done
            assert sibling_done["waited"] < 2 + 1.5
            proxy.silent.clear()  # back: its late save must not overwrite creds(2)
            start = time.monotonic()
            with pytest.raises((StoreUnavailable, StaleWrite)):
                cut_off.save(creds(3))
            assert time.monotonic() - start < 2 + 5
        assert sibling.load() == creds(2)
    finally:
        proxy.silent.clear()
        proxy.close()


def test_a_restart_mid_refresh_loses_no_rotation(backend: Backend) -> None:
    """The database restarts while a refresh's token call is under way: the holder's
    session (PostgreSQL) or connection (Redis) is gone, yet a sibling that starts its
    refresh right then must not read the old refresh token before the holder's save —
    retried across the restart — lands. PostgreSQL: the holder's lease from before the
    start; Redis: the lock key, kept by the append-only file."""
    restart = os.environ.get(f"REAUTH_{backend.kind.upper()}_RESTART")
    if not restart:
        if os.environ.get("REAUTH_REQUIRE_SERVERS") == "1":
            pytest.fail(f"REAUTH_{backend.kind.upper()}_RESTART is not set")
        pytest.skip("no restart command")
    g = grant()
    holder = backend.store(g, lock_wait=3, lock_ttl=8)
    sibling = backend.store(g, lock_wait=6, lock_ttl=8)
    holder.save(creds(1))
    seen: dict = {}

    def sibling_refreshes() -> None:
        with sibling.lock():
            seen["credentials"] = sibling.load()

    with holder.lock():
        assert holder.load() == creds(1)
        subprocess.run([restart], check=True)  # the token call is under way
        t = threading.Thread(target=sibling_refreshes)
        t.start()
        time.sleep(0.5)  # the sibling is back first, and must wait
        assert "credentials" not in seen
        holder.save(creds(2))  # the rotation, saved across the restart
    t.join(10)
    assert seen.get("credentials") == creds(2)
