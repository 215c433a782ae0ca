"""What a shared store costs, measured: the time a refresh spends on the store (lock,
read, save, release — no token call) for each store, next to a loopback refresh call to
the reference token server measured in the same run; the round trips and writes per
refresh, counted on the servers themselves; and the memory of one Python worker holding
``--grants`` grants (stores and adapters).

    python tests/fleet/scale.py --postgres URL --redis URL --server-bin BIN [--grants 10000]

Prints one table. Wall-clock medians on a shared machine: compare the rows of one run.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import time
import uuid

import httpx


def rss_kib() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cycle(store, creds) -> None:
    with store.lock():
        store.load()
        store.save(creds)


def median_ms(f, n: int) -> float:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--postgres", required=True)
    p.add_argument("--redis", required=True)
    p.add_argument("--server-bin", required=True)
    p.add_argument("--grants", type=int, default=10_000)
    p.add_argument("-n", type=int, default=300)
    a = p.parse_args()

    import redis
    from psycopg_pool import ConnectionPool

    from reauth.postgres import PostgresStore, create_table, pool_options
    from reauth.redis import RedisStore, client_options
    from reauth.store import StoredCredentials

    server = subprocess.Popen([a.server_bin], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    base = server.stdout.readline().split()[-1]  # type: ignore[union-attr]
    http = httpx.Client(base_url=base)
    rt = http.post("/oauth/token", data={"grant_type": "password", "username": "u", "password": "p"}).json()

    def refresh_call() -> None:
        nonlocal rt
        rt = http.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": rt["refresh_token"],
                                             "client_id": "c"}).json()

    creds = StoredCredentials("a" * 40, "r" * 40, time.time() + 3600)
    pool = ConnectionPool(a.postgres, kwargs=pool_options(), min_size=2, max_size=4, open=True)
    create_table(pool)
    client = redis.Redis.from_url(a.redis, **client_options())
    pg = PostgresStore(pool, f"scale-{uuid.uuid4()}")
    rd = RedisStore(client, f"scale-{uuid.uuid4()}")
    for _ in range(20):  # warm up
        cycle(pg, creds), cycle(rd, creds), refresh_call()
    rows = []
    for name, f in [("refresh call to the token server (loopback)", refresh_call),
                    ("PostgreSQL store: lock, read, save, release", lambda: cycle(pg, creds)),
                    ("Redis store: lock, read, save, release", lambda: cycle(rd, creds))]:
        rows.append((name, median_ms(f, a.n)))
    # Commands per refresh, counted by Redis itself (a second INFO counts the first).
    before_cmds = client.info("stats")["total_commands_processed"]
    cycle(rd, creds)
    rd_cmds = client.info("stats")["total_commands_processed"] - before_cmds - 1

    gc.collect()
    base_rss = rss_kib()
    stores = [PostgresStore(pool, f"scale-{i}") for i in range(a.grants)]
    gc.collect()
    stores_rss = rss_kib()
    from reauth import Config
    from reauth.httpx import ReauthAuth

    auths = []
    token_client = httpx.Client()  # one for every grant, as a fleet worker shares it
    for i in range(min(a.grants, 1000)):
        auths.append(ReauthAuth(base + "/oauth/token", "c", store=stores[i], flight_recorder=0,
                                token_client=token_client, config=Config(refresh_timeout_ms=30_000)))
    gc.collect()
    auth_rss = rss_kib()
    per_auth = (auth_rss - stores_rss) / max(1, len(auths))
    for auth in auths:
        auth.close()
    server.stdin.close()  # type: ignore[union-attr]
    server.wait()

    print(f"{'what':52} {'median ms':>10}")
    for name, ms in rows:
        print(f"{name:52} {ms:10.3f}")
    print(f"Redis commands per refresh (INFO total_commands_processed): {rd_cmds}")
    print(f"Python worker memory: {(stores_rss - base_rss) / a.grants * 1024:.0f} B per grant's store "
          f"({a.grants} stores), {per_auth:.1f} KiB per grant's adapter ({len(auths)} adapters, "
          f"one timer thread each); {a.grants} grants ≈ "
          f"{(stores_rss - base_rss + per_auth * a.grants) / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
