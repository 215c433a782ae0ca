"""The credential stores, and two processes sharing one FileStore through 401 storms
with reuse detection and no grace window: the multi-process recipe (contract §12.2)."""

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import reauth
from conftest import PYTHON, TokenServer


def test_file_store_round_trip_is_private_and_atomic(tmp_path):
    store = reauth.FileStore(tmp_path / "creds.json")
    assert store.load() is None
    store.save(reauth.StoredCredentials("at-1", "rt-1", 1234.5))
    assert store.load() == reauth.StoredCredentials("at-1", "rt-1", 1234.5)
    assert stat.S_IMODE(os.stat(tmp_path / "creds.json").st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".reauth-")] == []
    store.clear()
    assert store.load() is None
    store.clear()  # clearing twice is fine


def test_file_store_refuses_a_foreign_file(tmp_path):
    path = tmp_path / "creds.json"
    path.write_text("not json")
    try:
        reauth.FileStore(path).load()
    except ValueError as e:
        assert "not a credentials file" in str(e)
    else:
        raise AssertionError("a foreign file must be refused")


def test_stored_expiry_survives_a_restart():
    stored = reauth.StoredCredentials("at", "rt", expires_at=time.time() + 10)
    lifetime = stored.to_credentials().expires_in_ms()
    assert 9_000 < lifetime <= 10_000
    expired = reauth.StoredCredentials("at", "rt", expires_at=time.time() - 10)
    assert expired.to_credentials().expires_in_ms() == 0, "an expired token logs in with lifetime 0"
    # A restored token that expired in storage is refreshed before any request uses it.
    core = reauth.Coordinator()
    core.login(0, expired.to_credentials())
    submitted = core.submit(1)
    assert [c.is_refresh() for c in submitted.commands] == [True] and core.waiting() == 1


def test_two_processes_share_one_refresh_token_without_reuse(tmp_path):
    server = TokenServer("--access-ttl-ms", "1500", "--reuse-grace-ms", "0")
    try:
        path = tmp_path / "creds.json"
        token = server.login()
        reauth.FileStore(path).save(
            reauth.StoredCredentials(token["access_token"], token["refresh_token"], time.time() + token["expires_in"])
        )
        seconds = 5
        workers = [
            subprocess.Popen([PYTHON, str(Path(__file__).with_name("two_process_worker.py")), server.url, str(path), str(seconds)],
                             stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        end = time.monotonic() + seconds
        while time.monotonic() < end:  # 401 storms
            time.sleep(1.0)
            server.revoke_access()
        results = [json.loads(w.communicate(timeout=60)[0]) for w in workers]
        stats = server.stats()
        summary = (f"two processes: {[r['ok'] for r in results]} ok, {[r['lost'] for r in results]} lost, "
                   f"{stats['reuse_detections']} reuse detections, {stats['rotations']} rotations, "
                   f"{stats['refresh_calls']} refresh calls, cycles {[r['refresh_cycles'] for r in results]}, "
                   f"logouts {[r['logouts'] for r in results]}")
        print(summary)
        assert all(w.returncode == 0 for w in workers)
        assert stats["reuse_detections"] == 0 and stats["families_revoked"] == 0, summary
        assert all(r["logouts"] == [] and r["lost"] == 0 and r["ok"] > 0 for r in results), summary
        # Siblings adopted each other's rotations: fewer server calls than cycles.
        assert stats["refresh_calls"] <= sum(r["refresh_attempts"] for r in results), summary
    finally:
        server.stop()
