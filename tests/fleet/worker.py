"""A fleet worker in Python: many grants, one shared store, concurrent requests.

Run by tests/fleet/fleet.py with one argument, a JSON file: {"server", "store",
"store_url", "grants", "concurrency", "seconds", "out", "lock_wait", "lock_ttl",
"refresh_timeout_ms", "no_lock"}. Every 0.25 s (and at the end) it writes its counts to
``out`` (replaced atomically): requests answered, failed by reason, unexpected errors,
logouts. SIGUSR1 makes its next refresh (within 5 s) stall while holding the lock (after reading the
store, before calling the server) and write ``out + ".stalled"``: the orchestrator then
kills it there.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sys
import threading
import time
from collections import Counter

import httpx

import logging

from reauth import Config
from reauth.httpx import ReauthAuth, RequestFailed
from reauth.postgres import StoreUnavailable

cfg = json.load(open(sys.argv[1]))
# The pool says each failed connection during a database restart; the counts tell the story.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
stall_until = [0.0]  # the next refresh under the lock before this moment stalls
signal.signal(signal.SIGUSR1, lambda *_: stall_until.__setitem__(0, time.monotonic() + 5))
counts: Counter = Counter()
counts_lock = threading.Lock()


def count(key: str) -> None:
    with counts_lock:
        counts[key] += 1


def stalling(cls):
    """The store, with a stall the orchestrator can ask for, and (``no_lock``) without
    its fleet lock — the deliberate fault that must show reuse detections."""

    class Stalling(cls):
        def load(self):
            creds = super().load()
            if time.monotonic() < stall_until[0] and self._holding():
                open(cfg["out"] + ".stalled", "w").close()
                time.sleep(3600)  # killed here, holding the lock, mid-refresh
            return creds

        if cfg["no_lock"]:
            def _acquire(self) -> None:
                pass

            def _release(self) -> None:
                pass

    return Stalling


url = cfg["store_url"]
if cfg["store"] == "postgres":
    from psycopg_pool import ConnectionPool

    from reauth.postgres import PostgresStore, pool_options

    sep = "&" if "?" in url else "?"
    pool = ConnectionPool(f"{url}{sep}application_name=fleet-{os.getpid()}", kwargs=pool_options(2),
                          min_size=2, max_size=24, open=True, timeout=5)
    Store = stalling(PostgresStore)
    make = lambda g: Store(pool, g, lock_wait=cfg["lock_wait"], lock_ttl=cfg["lock_ttl"])  # noqa: E731
else:
    import redis

    from reauth.redis import RedisStore, client_options

    client = redis.Redis.from_url(url, max_connections=64, **client_options(2))
    Store = stalling(RedisStore)
    make = lambda g: Store(client, g, lock_wait=cfg["lock_wait"], lock_ttl=cfg["lock_ttl"])  # noqa: E731

config = Config(refresh_timeout_ms=cfg["refresh_timeout_ms"], max_retries=8, max_backoff_ms=2_000,
                initial_backoff_ms=200)
token_client = httpx.Client(timeout=5, limits=httpx.Limits(max_connections=32))


def start(grant: str) -> ReauthAuth:
    """The adapter reads the store when it is built and raises StoreUnavailable while the
    database is down: a worker (re)started during the restart waits for it, as a service
    under a supervisor would, and says so."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return ReauthAuth(cfg["server"] + "/oauth/token", "fleet", store=make(grant), config=config,
                              token_client=token_client,
                              on_logout=lambda reason: count(f"logout:{reason.name.lower()}"), flight_recorder=0)
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            print(f"worker {os.getpid()}: the store is unavailable at start; waiting for it", file=sys.stderr)
            time.sleep(0.2)


auths = [start(g) for g in cfg["grants"]]
api = httpx.Client(base_url=cfg["server"], timeout=10, limits=httpx.Limits(max_connections=cfg["concurrency"] * 2))
stop_at = time.monotonic() + cfg["seconds"]


def work(seed: int) -> None:
    rng = random.Random(seed)
    while time.monotonic() < stop_at:
        auth = rng.choice(auths)
        try:
            r = api.get("/api/fleet", auth=auth)
            count("ok" if r.status_code == 200 else f"status:{r.status_code}")
        except RequestFailed as e:
            count(f"failed:{e.reason.name.lower()}")
        except httpx.TransportError as e:
            count(f"transport:{type(e).__name__}")
        except Exception as e:  # noqa: BLE001 - counted, and the run fails on it
            count(f"error:{type(e).__name__}")


def report() -> None:
    with counts_lock:
        body = json.dumps({"pid": os.getpid(), "lang": "python", "counts": dict(counts)})
    tmp = cfg["out"] + ".tmp"
    with open(tmp, "w") as f:
        f.write(body)
    os.replace(tmp, cfg["out"])


threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(cfg["concurrency"])]
for t in threads:
    t.start()
while any(t.is_alive() for t in threads):
    report()
    time.sleep(0.25)
for auth in auths:
    with contextlib.suppress(Exception):
        auth.close()
report()
