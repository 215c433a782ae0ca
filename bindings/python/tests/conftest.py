"""Fixtures: the repository's transcripts and the reference token server.

The tests import ``reauth`` from the installed wheel (run them from a virtualenv where
``pip install ./bindings/python`` ran), never from the source tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]
VECTORS = sorted((ROOT / "tests" / "vectors").glob("*.json"))


def pytest_configure(config: pytest.Config) -> None:
    import reauth

    if Path(reauth.__file__).resolve().is_relative_to(ROOT / "bindings" / "python" / "python"):
        raise pytest.UsageError("reauth is imported from the source tree: pip install ./bindings/python first")


def server_binary() -> str:
    path = os.environ.get("REAUTH_TESTSERVER") or str(ROOT / "target" / "release" / "reauth-testserver")
    if not os.path.exists(path):
        subprocess.run(
            ["cargo", "build", "--release", "--locked", "-q", "-p", "reauth-testserver"], cwd=ROOT, check=True
        )
    return path


class TokenServer:
    """The reference token server (tests/server), started for one test module."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [server_binary(), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("listening on "):
            self.process.kill()
            raise RuntimeError(f"the token server did not start: {line!r}")
        self.url = line.split()[-1]
        self.token_url = self.url + "/oauth/token"

    def login(self) -> dict:
        return httpx.post(self.token_url, data={"grant_type": "password", "username": "u", "password": "p"}).json()

    def stats(self) -> dict:
        return httpx.get(self.url + "/admin/stats").json()

    def configure(self, **patch: object) -> None:
        httpx.post(self.url + "/admin/config", json=patch).raise_for_status()

    def revoke_access(self) -> None:
        httpx.post(self.url + "/admin/revoke-access").raise_for_status()

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    server = TokenServer("--access-ttl-ms", "1500")
    yield server
    server.stop()


def credentials_from(token: dict):
    import reauth

    return reauth.Credentials(
        token["access_token"],
        refresh_token=token.get("refresh_token"),
        expires_in_ms=int(token["expires_in"] * 1000),
    )


PYTHON = sys.executable
