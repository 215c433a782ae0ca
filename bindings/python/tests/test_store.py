"""The credential stores, and two processes sharing one FileStore through 401 storms
with reuse detection and no grace window: the multi-process recipe (contract §12.2)."""

import json
import logging
import os
import random
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

import reauth
from conftest import PYTHON, TokenServer


def test_file_store_round_trip_is_private_and_atomic(tmp_path):
    store = reauth.FileStore(tmp_path / "creds.json")
    assert store.load() is None
    store.save(reauth.StoredCredentials("at-1", "rt-1", 1234.5))
    assert store.load() == reauth.StoredCredentials("at-1", "rt-1", 1234.5)
    assert stat.S_IMODE(os.stat(tmp_path / "creds.json").st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["creds.json", "creds.json.lock"]
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


# A child process saving in a loop, to be killed with SIGKILL at a random moment: every
# token it writes contains SECRET, so a file holding token text is easy to find.
_SAVE_LOOP = """
import sys
import reauth
store = reauth.FileStore(sys.argv[1])
i = 0
while True:
    store.save(reauth.StoredCredentials(f"at-SECRET-{i}", f"rt-SECRET-{i}", 1.7e9 + i))
    if i == 0:
        print("saving", flush=True)
    i += 1
"""


def test_a_kill_during_a_save_leaves_no_token_text_after_the_next_operation(tmp_path):
    """SIGKILL runs no cleanup: whatever a kill mid-save leaves, the store file is whole,
    and after one more load, save or clear no other file holds token text."""
    path = tmp_path / "creds.json"
    store = reauth.FileStore(path)
    operations = [
        ("load", store.load),
        ("save", lambda: store.save(reauth.StoredCredentials("at-SECRET-parent", "rt-SECRET-parent", 1.7e9))),
        ("clear", store.clear),
    ]
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    kills, mid_save = 40, 0
    for kill in range(kills):
        child = subprocess.Popen([PYTHON, "-c", _SAVE_LOOP, str(path)], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline() == "saving\n"
            time.sleep(rng.uniform(0, 0.01))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()
        others = sorted(p.name for p in tmp_path.iterdir() if p.name not in ("creds.json", "creds.json.lock"))
        mid_save += bool(others)
        # Atomic replace: the store file is never half a write.
        assert json.loads(path.read_text())["access_token"].startswith("at-SECRET-"), f"seed {seed}"
        name, operation = operations[kill % len(operations)]
        operation()
        leaking = [p.name for p in tmp_path.iterdir() if p.name != "creds.json" and b"SECRET" in p.read_bytes()]
        assert leaking == [], f"kill {kill} left {others}; after {name}: {leaking} hold token text (seed {seed})"
    assert mid_save > 0, f"no kill landed mid-save in {kills} (seed {seed}): the test proved nothing"
    print(f"{mid_save} of {kills} kills landed mid-save")


@pytest.mark.parametrize("flock", [True, False], ids=["flock", "no-flock (Windows)"])
def test_a_leftover_temporary_file_is_removed_by_the_next_load_save_or_clear(tmp_path, monkeypatch, flock):
    if not flock:
        monkeypatch.setattr(reauth.store, "fcntl", None)
    path = tmp_path / "creds.json"
    store = reauth.FileStore(path)
    tmp = tmp_path / "creds.json.tmp"
    for name, operation in [
        ("load", store.load),
        ("save", lambda: store.save(reauth.StoredCredentials("at-SECRET-2", "rt-SECRET-2", 2.0))),
        ("clear", store.clear),
    ]:
        store.save(reauth.StoredCredentials("at-SECRET-1", "rt-SECRET-1", 1.0))
        # What a save killed before its rename leaves: a whole or a partial write.
        tmp.write_text('{"access_token": "at-SECRET-killed", "refr')
        result = operation()
        if name == "load":
            assert result == reauth.StoredCredentials("at-SECRET-1", "rt-SECRET-1", 1.0)
        leaking = [p.name for p in tmp_path.iterdir() if p.name != "creds.json" and b"SECRET" in p.read_bytes()]
        assert leaking == [] and not tmp.exists(), f"after {name}"


def test_a_symbolic_link_in_place_of_the_temporary_file_is_never_written_through(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("untouched")
    (tmp_path / "creds.json.tmp").symlink_to(elsewhere)
    store = reauth.FileStore(tmp_path / "creds.json")
    store.save(reauth.StoredCredentials("at", "rt", 1.0))
    assert elsewhere.read_text() == "untouched"
    assert store.load() == reauth.StoredCredentials("at", "rt", 1.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["creds.json", "creds.json.lock", "elsewhere"]


def test_file_store_fsyncs_the_file_before_the_rename_and_the_directory_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync directory" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src, dst):
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    reauth.FileStore(tmp_path / "creds.json").save(reauth.StoredCredentials("at", "rt", 1.0))
    assert events == ["fsync file", "rename", "fsync directory"]


@pytest.mark.parametrize(
    "body, message",
    [
        ('{"access_token": "at-SECRET", "refresh_token": 5}', 'field "refresh_token" must be a string or null, got a number'),
        ('{"access_token": "at-SECRET", "refresh_token": true}', 'field "refresh_token" must be a string or null, got a boolean'),
        ('{"refresh_token": "rt-SECRET"}', 'field "access_token" is missing'),
        ('{"access_token": null, "refresh_token": "rt-SECRET"}', 'field "access_token" must be a non-empty string, got null'),
        ('{"access_token": 5, "refresh_token": "rt-SECRET"}', 'field "access_token" must be a non-empty string, got a number'),
        ('{"access_token": "", "refresh_token": "rt-SECRET"}', 'field "access_token" must be a non-empty string, got an empty string'),
        ('{"access_token": ["at-SECRET"]}', 'field "access_token" must be a non-empty string, got an array'),
        ('{"access_token": "at-SECRET", "expires_at": "rt-SECRET"}', 'field "expires_at" must be a number or null, got a string'),
        ('{"access_token": "at-SECRET", "expires_at": {"rt": "SECRET"}}', 'field "expires_at" must be a number or null, got an object'),
        ('{"access_token": "at-SECRET", "expires_at": false}', 'field "expires_at" must be a number or null, got a boolean'),
        ('{"access_token": "at-SECRET", "expires_at": Infinity}', 'field "expires_at" must be a finite number'),
        ('{"access_token": "at-SECRET", "expires_at": NaN}', 'field "expires_at" must be a finite number'),
        ('{"access_token": "at-SECRET", "expires_at": 1e999}', 'field "expires_at" must be a finite number'),
        ('["at-SECRET"]', "not a credentials file (the JSON is an array, not an object)"),
        ('{"access_token": "at-SECRET"', "not a credentials file (invalid JSON"),
    ],
)
def test_a_corrupt_store_names_the_file_and_the_field_never_the_tokens(tmp_path, body, message):
    path = tmp_path / "credentials.json"
    path.write_text(body)
    with pytest.raises(ValueError) as raised:
        reauth.FileStore(path).load()
    assert str(raised.value).startswith(f"{path}: {message}"), str(raised.value)
    assert "SECRET" not in str(raised.value)


def test_a_store_with_missing_optional_fields_or_an_integer_expiry_loads(tmp_path):
    path = tmp_path / "credentials.json"
    path.write_text('{"access_token": "at", "expires_at": 1700000000}')
    assert reauth.FileStore(path).load() == reauth.StoredCredentials("at", None, 1700000000)


def test_loading_a_store_others_can_read_warns_once_per_mode(tmp_path, caplog):
    path = tmp_path / "creds.json"
    store = reauth.FileStore(path)
    store.save(reauth.StoredCredentials("at-SECRET", "rt-SECRET", 1.0))
    with caplog.at_level(logging.WARNING, logger="reauth"):
        store.load()
        assert [r.levelno for r in caplog.records] == []  # 0600: nothing to say
        os.chmod(path, 0o644)
        store.load()
        warnings = [r.getMessage() for r in caplog.records if r.name == "reauth" and r.levelno == logging.WARNING]
        assert len(warnings) == 1, warnings
        assert str(path) in warnings[0] and "0644" in warnings[0] and "chmod 600" in warnings[0], warnings[0]
        assert "SECRET" not in warnings[0]
        store.load()  # the adapters load on every refresh: said once is enough
        os.chmod(path, 0o660)
        store.load()  # ...until the mode changes
        warnings = [r.getMessage() for r in caplog.records if r.name == "reauth" and r.levelno == logging.WARNING]
        assert len(warnings) == 2 and "0660" in warnings[1], warnings


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
