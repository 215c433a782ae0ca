"""One of two processes sharing a FileStore (run by test_store.py): 8 threads of
requests for SECONDS, then its results as JSON on stdout."""

import json
import sys
import threading
import time

import httpx

import reauth
from reauth.httpx import ReauthAuth

url, path, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
logouts = []
auth = ReauthAuth(
    url + "/oauth/token",
    "two-process",
    store=reauth.FileStore(path),
    config=reauth.Config(initial_backoff_ms=50, max_backoff_ms=1000, max_retries=8, max_replays_per_request=2),
    on_logout=logouts.append,
)
results = {"ok": 0, "failed": []}
lock = threading.Lock()


def worker():
    with httpx.Client(auth=auth, base_url=url, timeout=30) as client:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                r = client.get("/api/shared")
                with lock:
                    results["ok"] += r.status_code == 200
                    if r.status_code != 200:
                        results["failed"].append(r.status_code)
            except Exception as e:
                with lock:
                    results["failed"].append(repr(e))


threads = [threading.Thread(target=worker) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
stats = auth.stats()
auth.close()
print(json.dumps({
    "ok": results["ok"],
    "failed": results["failed"][:20],
    "lost": len(results["failed"]),
    "logouts": [r.name for r in logouts],
    "refresh_cycles": stats.refresh_cycles,
    "refresh_attempts": stats.refresh_attempts,
}))
