"""The httpx adapter next to its bare client and to Authlib's, on loopback against the
reference server with a long-lived token (no refresh): the cost a user pays per request.

Rounds are interleaved (bare, reauth, authlib, then the next round in a rotated order) so
that a machine slowing down mid-run hurts every client alike; each round's time is divided
by the bare client's in the same round, and the median of those ratios is reported, with
the CPU time each client's own thread spent per request (process CPU minus the bare
client's). Wall-clock numbers on a shared machine vary by run; the ratios are what to read.

    python bench/adapters.py [--requests 400] [--rounds 9] [--threads 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import TokenServer, credentials_from  # noqa: E402

from reauth.httpx import ReauthAuth  # noqa: E402

try:
    from authlib.integrations.httpx_client import OAuth2Client
except ImportError:  # the peer is optional
    OAuth2Client = None


def clients(server: TokenServer):
    token = server.login()
    made = {"bare httpx": httpx.Client(headers={"Authorization": f"Bearer {token['access_token']}"})}
    auth = ReauthAuth(server.token_url, "bench", credentials=credentials_from(token))
    made["reauth httpx"] = httpx.Client(auth=auth)
    if OAuth2Client is not None:
        made["authlib OAuth2Client"] = OAuth2Client(
            client_id="bench", token=dict(token, token_type="Bearer"), token_endpoint=server.token_url
        )
    return made, auth


def run(client: httpx.Client, url: str, requests: int, threads: int) -> tuple[float, float]:
    """Wall seconds and process CPU seconds for `requests` GETs on `threads` threads."""

    def some(n: int) -> None:
        for i in range(n):
            r = client.get(f"{url}/api/items/{i % 16}")
            if r.status_code != 200:
                raise RuntimeError(f"unexpected {r.status_code}")

    wall, cpu = time.perf_counter(), time.process_time()
    if threads == 1:
        some(requests)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(some, [requests // threads] * threads))
    return time.perf_counter() - wall, time.process_time() - cpu


def load_and_storm(server: TokenServer, bare: httpx.Client, reauth_client: httpx.Client, workers: int = 64) -> None:
    """The demo's load — 64 threads for 2 s on a fixed token: requests/s of bare httpx and
    of the adapter (interleaved, twice each) — then a 401 storm under that load: every
    access token revoked at once, and the time until every worker succeeded again, next
    to the idle round trips and the round trip under the load."""
    url = f"{server.url}/api/items"

    def load(client: httpx.Client, seconds: float = 2.0) -> float:
        stop = threading.Event()
        done = [0] * workers

        def work(w: int) -> None:
            while not stop.is_set():
                client.get(f"{url}/{w % 16}").raise_for_status()
                done[w] += 1

        threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join()
        return sum(done) / seconds

    bare_rates, reauth_rates = [], []
    for _ in range(2):
        bare_rates.append(load(bare))
        reauth_rates.append(load(reauth_client))
    b, r = statistics.median(bare_rates), statistics.median(reauth_rates)
    print(f"\n{workers} threads for 2 s, a fixed token: bare httpx {b:.0f} requests/s, "
          f"reauth httpx {r:.0f} requests/s ({b / r:.2f}x fewer)")

    started = time.perf_counter()
    reauth_client.get(url).raise_for_status()
    request_rtt = time.perf_counter() - started
    token = server.login()
    started = time.perf_counter()
    httpx.post(server.token_url, data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}).raise_for_status()
    refresh_rtt = time.perf_counter() - started

    stop = threading.Event()
    revoked_at = [float("inf")]
    recovered = [0.0] * workers

    def storm(w: int) -> None:
        while not stop.is_set():
            began = time.perf_counter()
            reauth_client.get(f"{url}/{w % 16}").raise_for_status()
            if began >= revoked_at[0] and not recovered[w]:
                recovered[w] = time.perf_counter()

    threads = [threading.Thread(target=storm, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    revoked_at[0] = time.perf_counter()
    server.revoke_access()
    time.sleep(3.0)
    stop.set()
    for t in threads:
        t.join()
    all_back = all(recovered)
    last = max(recovered) - revoked_at[0] if all_back else float("nan")
    print(f"401 storm under {workers} threads: every worker succeeded again {last * 1000:.1f} ms after the revocation "
          f"({'all recovered' if all_back else 'NOT all recovered'}); idle round trips: refresh {refresh_rtt * 1000:.2f} ms, "
          f"request {request_rtt * 1000:.2f} ms; a request round trip under this load: {workers / r * 1000:.2f} ms")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--threads", type=int, default=8)
    a = p.parse_args()
    server = TokenServer("--access-ttl-ms", "3600000")
    try:
        made, auth = clients(server)
        for client in made.values():  # warm: connections open, routes cached
            run(client, server.url, 50, 1)
        print(f"python {sys.version.split()[0]}, httpx {httpx.__version__}, "
              f"{a.requests} requests x {a.rounds} interleaved rounds; median ratio to bare httpx in the same round")
        print("| mode | client | µs/request | ratio | CPU µs/request over bare |")
        print("| --- | --- | ---: | ---: | ---: |")
        for threads in (1, a.threads):
            times = {name: [] for name in made}
            names = list(made)
            for r in range(a.rounds):
                order = names[r % len(names):] + names[: r % len(names)]
                for name in order:
                    times[name].append(run(made[name], server.url, a.requests, threads))
            mode = "sequential" if threads == 1 else f"{threads} threads"
            for name in names:
                ratios = [t[0] / b[0] for t, b in zip(times[name], times["bare httpx"])]
                cpu = [(t[1] - b[1]) / a.requests * 1e6 for t, b in zip(times[name], times["bare httpx"])]
                us = statistics.median(t[0] for t in times[name]) / a.requests * 1e6
                print(f"| {mode} | {name} | {us:.0f} | {statistics.median(ratios):.2f}× | "
                      f"{statistics.median(cpu):+.0f} |")
        stats = auth.stats()
        assert stats.refresh_attempts == 0, "the token was long-lived: no refresh"
        load_and_storm(server, made["bare httpx"], made["reauth httpx"])
        for client in made.values():
            client.close()
        auth.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
