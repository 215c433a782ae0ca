"""The fleet test: workers in Python and Rust share one grant store (PostgreSQL or Redis)
against the reference token server in strict mode (any reuse revokes the family).

    python tests/fleet/fleet.py --store postgres --store-url URL --server-bin BIN \
        --rust-worker BIN [--seconds 60 --workers 8 --rust-workers 4 --grants 100 ...]

What it does: logs in ``--grants`` grants, stores them, starts ``--workers`` worker
processes (``--rust-workers`` of them the Rust one) with ``--concurrency`` requests in
flight each and one adapter per grant; revokes every access token every
``--storm-every`` s (a 401 storm) on top of the access tokens' own short lifetime;
kills a worker with SIGKILL every ``--kill-every`` s and starts a new one — every other
kill while the worker holds a grant's lock in the middle of a refresh (asked to stall
there after reading the store, before calling the server), the others at a moment it
holds no lock; and restarts the database once (``--restart-cmd`` at ``--restart-at``).

Then, from the token server's own counters: refresh calls = rotations + the calls its
injected faults answered (503s, dropped connections), no rejection, no reuse detection,
no family revoked; from the workers: no logout, and every request answered or failed
with a reason the core states (no transport or unexpected error). A kill between the
server's rotation and the store's commit is the one loss no store can prevent (the
rotation lived only in the killed process): the kills here avoid it by construction, as
said above, and docs/fleet.md says how to bound it.

``--no-lock`` runs the workers without the fleet's lock (the deliberate fault) and
``--expect-reuse`` then requires reuse detections: proof that the test can fail.
Exit status 0 when every check holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", choices=["postgres", "redis"], required=True)
    p.add_argument("--store-url", required=True)
    p.add_argument("--server-bin", required=True)
    p.add_argument("--rust-worker", required=True)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--rust-workers", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--grants", type=int, default=100)
    p.add_argument("--access-ttl-ms", type=int, default=2_000)
    p.add_argument("--storm-every", type=float, default=5)
    p.add_argument("--kill-every", type=float, default=3)
    p.add_argument("--restart-at", type=float, default=-1, help="seconds into the run; negative: no restart")
    p.add_argument("--restart-cmd", default="")
    p.add_argument("--token-5xx-rate", type=float, default=0.02)
    p.add_argument("--dropped-connection-rate", type=float, default=0.01)
    p.add_argument("--no-lock", action="store_true")
    p.add_argument("--expect-reuse", action="store_true")
    a = p.parse_args()

    here = Path(__file__).resolve().parent
    work = Path(tempfile.mkdtemp(prefix="reauth-fleet-"))
    server = subprocess.Popen(
        [a.server_bin, "--reuse-grace-ms", "0", "--access-ttl-ms", str(a.access_ttl_ms),
         "--token-5xx-rate", str(a.token_5xx_rate), "--dropped-connection-rate", str(a.dropped_connection_rate),
         "--seed", "7"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    line = server.stdout.readline()  # type: ignore[union-attr]
    if not line.startswith("listening on "):
        print(f"fleet: the token server did not start: {line!r}", file=sys.stderr)
        return 1
    base = line.split()[-1]
    http = httpx.Client(base_url=base, timeout=10)
    try:
        return run(a, here, work, base, http)
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.wait(10)


def seed_store(a: argparse.Namespace, grants: "list[str]", logins: "list[dict]") -> None:
    from reauth.store import StoredCredentials

    now = time.time()
    if a.store == "postgres":
        from psycopg_pool import ConnectionPool

        from reauth.postgres import PostgresStore, create_table, pool_options

        pool = ConnectionPool(a.store_url, kwargs=pool_options(), min_size=1, max_size=4, open=True)
        create_table(pool)
        stores = [PostgresStore(pool, g) for g in grants]
    else:
        import redis

        from reauth.redis import RedisStore, client_options

        client = redis.Redis.from_url(a.store_url, **client_options())
        stores = [RedisStore(client, g) for g in grants]
    for store, body in zip(stores, logins):
        store.save(StoredCredentials(body["access_token"], body["refresh_token"], now + body["expires_in"]))


def run(a: argparse.Namespace, here: Path, work: Path, base: str, http: httpx.Client) -> int:
    tag = f"{os.getpid()}-{int(time.time())}"
    grants = [f"fleet-{tag}-{i}" for i in range(a.grants)]
    logins = [http.post("/oauth/token", data={"grant_type": "password", "username": g, "password": "p"}).json()
              for g in grants]
    seed_store(a, grants, logins)
    before = http.get("/admin/stats").json()  # the logins; the checks count from here

    cfg = {
        "server": base, "store": a.store, "store_url": a.store_url, "grants": grants,
        "concurrency": a.concurrency, "lock_wait": 4.0, "lock_ttl": 6.0, "refresh_timeout_ms": 5_000,
        "no_lock": a.no_lock,
    }
    workers: "dict[int, tuple[subprocess.Popen, str, str]]" = {}  # slot -> process, out, lang
    started = 0
    finished: "list[dict]" = []
    killed: "list[dict]" = []
    end = time.monotonic() + a.seconds

    def spawn(slot: int) -> None:
        nonlocal started
        started += 1
        lang = "rust" if slot < a.rust_workers else "python"
        out = str(work / f"worker-{started}.json")
        c = dict(cfg, seconds=max(0.5, end - time.monotonic()), out=out)
        path = work / f"worker-{started}.cfg.json"
        path.write_text(json.dumps(c))
        cmd = [a.rust_worker, str(path)] if lang == "rust" else [sys.executable, str(here / "worker.py"), str(path)]
        workers[slot] = (subprocess.Popen(cmd), out, lang)

    for slot in range(a.workers):
        spawn(slot)
    t0 = time.monotonic()
    next_storm, next_kill = t0 + a.storm_every, t0 + a.kill_every
    restarted = a.restart_at < 0
    kills = Counter()
    rng = random.Random(7)
    while time.monotonic() < end:
        now = time.monotonic()
        if now >= next_storm:
            http.post("/admin/revoke-access")
            next_storm += a.storm_every
        if not restarted and now - t0 >= a.restart_at:
            subprocess.run(a.restart_cmd, shell=True, check=True)
            restarted = True
            print(f"fleet: restarted {a.store} at {now - t0:.1f} s", flush=True)
        if now >= next_kill and end - now > 2:
            slot = rng.randrange(a.workers)
            proc, out, lang = workers[slot]
            how = kill(a, proc, out, in_lock=kills["total"] % 2 == 0)
            if how:
                kills[how] += 1
                kills["total"] += 1
                killed.append(read(out))
                spawn(slot)
            next_kill += a.kill_every
        time.sleep(0.02)
    for proc, out, lang in workers.values():
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            print(f"fleet: a {lang} worker did not finish within 30 s of the end", file=sys.stderr)
            return 1
        finished.append(read(out))
        if proc.returncode != 0:
            print(f"fleet: a {lang} worker exited with {proc.returncode}", file=sys.stderr)
            return 1

    after = http.get("/admin/stats").json()
    stats = {k: after[k] - before.get(k, 0) for k in after}
    total: Counter = Counter()
    for report in finished + killed:
        total.update(report.get("counts", {}))
    answered = total["ok"]
    refused = {k: v for k, v in total.items() if k != "ok"}
    faults = stats["token_5xx"] + stats["token_429"] + stats["dropped_connections"]
    summary = {
        "store": a.store, "seconds": a.seconds, "workers": a.workers, "rust_workers": a.rust_workers,
        "grants": a.grants, "started_workers": started, "kills": dict(kills), "requests_ok": answered,
        "requests_not_ok": refused, "refresh_calls": stats["refresh_calls"], "rotations": stats["rotations"],
        "fault_answers": faults, "rejections": stats["refresh_rejections"],
        "reuse_detections": stats["reuse_detections"], "families_revoked": stats["families_revoked"],
        "logins_during_run": stats["logins"],
    }
    print("fleet: " + json.dumps(summary), flush=True)

    problems = []
    logouts = sum(v for k, v in total.items() if k.startswith("logout:"))
    if a.expect_reuse:
        if stats["reuse_detections"] == 0:
            problems.append("no reuse detection without the lock: the test could not fail")
    else:
        if stats["reuse_detections"] or stats["families_revoked"] or stats["refresh_rejections"]:
            problems.append("rotations lost: reuse detections, revoked families or rejections")
        if stats["refresh_calls"] != stats["rotations"] + faults:
            problems.append(f"refresh calls {stats['refresh_calls']} != rotations {stats['rotations']} + "
                            f"fault answers {faults}")
        if logouts:
            problems.append(f"{logouts} logouts")
        # A status is the server's own answer handed back (a 401 after the request's one
        # replay, rule 6, the replay budget); anything else is a transport or an unexpected error.
        unexplained = {k: v for k, v in refused.items() if not k.startswith(("failed:", "logout:", "status:"))}
        if unexplained:
            problems.append(f"requests neither answered nor failed with a stated reason: {unexplained}")
        if answered == 0:
            problems.append("no request was answered")
        if kills["in_lock"] == 0 and a.kill_every < a.seconds - 2:
            problems.append("no worker was killed holding a lock")
    for problem in problems:
        print(f"fleet: FAILED: {problem}", file=sys.stderr)
    if not problems:
        print(f"fleet: passed ({a.store}: {answered} requests answered, {stats['rotations']} rotations, "
              f"{kills['total']} workers killed, 0 reuse detections)" if not a.expect_reuse else
              f"fleet: passed (without the lock: {stats['reuse_detections']} reuse detections, as expected)")
    return 1 if problems else 0


def read(out: str) -> dict:
    try:
        return json.loads(Path(out).read_text())
    except (OSError, ValueError):
        return {}


def holds_lock(a: argparse.Namespace, pid: int) -> bool:
    """Whether process ``pid`` holds a grant's lock, read from the database itself."""
    if a.store == "postgres":
        import psycopg

        # The advisory lock, or a live lease: a restart ends the locks of refreshes still
        # under way, whose holders then save on new connections under their lease.
        with psycopg.connect(a.store_url, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND s.application_name = %s) + "
                "(SELECT count(*) FROM reauth_credentials WHERE lease_owner LIKE %s "
                "AND lease_until > extract(epoch from clock_timestamp())::float8)",
                (f"fleet-{pid}", f"{pid}-%"),
            ).fetchone()
        return bool(row and row[0])
    import redis

    r = redis.Redis.from_url(a.store_url, socket_timeout=5)
    try:
        for key in r.scan_iter(match="reauth:lock:*", count=1000):
            value = r.get(key)
            if value is not None and value.split(b"-", 1)[0] == str(pid).encode():
                return True
        return False
    finally:
        r.close()


def kill(a: argparse.Namespace, proc: subprocess.Popen, out: str, in_lock: bool) -> "str | None":
    """Kills ``proc`` holding a lock mid-refresh (``in_lock``) or holding none; the kind
    of kill done, or ``None`` if the moment did not come (tried again later)."""
    if proc.poll() is not None:
        return None
    if in_lock:
        stalled = Path(out + ".stalled")
        proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 8
        while not stalled.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        if not stalled.exists():
            return None  # no refresh came (it keeps the flag: the next one stalls)
        if not holds_lock(a, proc.pid) and not a.no_lock:
            print("fleet: a stalled worker holds no lock", file=sys.stderr)
        proc.kill()
        proc.wait()
        return "in_lock"
    for _ in range(40):
        proc.send_signal(signal.SIGSTOP)
        try:
            if a.no_lock or not holds_lock(a, proc.pid):
                proc.kill()
                proc.wait()
                return "no_lock_held"
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
        time.sleep(0.013)
    return None


if __name__ == "__main__":
    sys.exit(main())
