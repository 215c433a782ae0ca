"""Where credentials live between refreshes and between runs.

A store holds the newest credentials and their expiry as wall-clock time (contract
§12.1: a monotonic clock does not survive a restart, so ``expires_at`` is persisted as
``time.time()`` seconds, never as the lifetime the server stated).

:class:`MemoryStore` keeps them in this process. :class:`FileStore` keeps them in a JSON
file (mode 0600, replaced atomically) under a cross-process lock, so several processes of
one app can share one refresh token: the adapters follow the contract's multi-process
recipe (§12.2) — on ``Refresh`` they read the store first and adopt a sibling's rotation
instead of calling the server, and on a rejection they re-read it once before logging out.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Optional, Protocol, runtime_checkable

import filelock

from ._native import Credentials

__all__ = ["StoredCredentials", "CredentialStore", "MemoryStore", "FileStore"]


@dataclass(frozen=True)
class StoredCredentials:
    """Credentials as stored. ``repr`` never shows the tokens."""

    access_token: str = field(repr=False)
    refresh_token: Optional[str] = field(default=None, repr=False)
    #: When the access token expires, as ``time.time()`` seconds; ``None`` if never.
    expires_at: Optional[float] = None

    def to_credentials(self, wall_now: Optional[float] = None) -> Credentials:
        """Credentials to log in (or report a refresh) with: the lifetime is what is left
        of the stored expiry, 0 if it passed (the token is then refreshed before use)."""
        expires_in_ms = None
        if self.expires_at is not None:
            now = time.time() if wall_now is None else wall_now
            expires_in_ms = max(0, int((self.expires_at - now) * 1000))
        return Credentials(self.access_token, refresh_token=self.refresh_token, expires_in_ms=expires_in_ms)


@runtime_checkable
class CredentialStore(Protocol):
    """What the adapters need of a store. ``lock()`` is held around a refresh (and around
    the re-read after a rejection); it must be re-entrant for the thread holding it."""

    def load(self) -> Optional[StoredCredentials]: ...

    def save(self, credentials: StoredCredentials) -> None: ...

    def clear(self) -> None: ...

    def lock(self) -> AbstractContextManager: ...


class MemoryStore:
    """Credentials in this process only (the default)."""

    def __init__(self, credentials: Optional[StoredCredentials] = None) -> None:
        self._credentials = credentials
        self._lock = threading.RLock()

    def load(self) -> Optional[StoredCredentials]:
        with self._lock:
            return self._credentials

    def save(self, credentials: StoredCredentials) -> None:
        with self._lock:
            self._credentials = credentials

    def clear(self) -> None:
        with self._lock:
            self._credentials = None

    def lock(self) -> AbstractContextManager:
        return self._lock

    def __repr__(self) -> str:
        return f"MemoryStore(holding={self._credentials is not None})"


class FileStore:
    """Credentials in a JSON file shared by several processes.

    Writes go to a temporary file in the same directory, then replace the file, so a
    reader never sees half a write; the file is created with mode 0600. A lock file next
    to it (``PATH.lock``, via the ``filelock`` package) serialises refreshes across
    processes; it is re-entrant within one thread.
    """

    def __init__(self, path: "os.PathLike[str] | str", lock_timeout: float = 60.0) -> None:
        self.path = os.path.expanduser(os.fspath(path))
        self._lock = filelock.FileLock(self.path + ".lock", timeout=lock_timeout)

    def load(self) -> Optional[StoredCredentials]:
        try:
            with open(self.path, encoding="utf-8") as f:
                raw = json.load(f)
        except FileNotFoundError:
            return None
        except ValueError as e:
            raise ValueError(f"{self.path}: not a credentials file ({e.__class__.__name__})") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("access_token"), str):
            raise ValueError(f"{self.path}: not a credentials file (no access_token)")
        return StoredCredentials(
            access_token=raw["access_token"],
            refresh_token=raw.get("refresh_token"),
            expires_at=raw.get("expires_at"),
        )

    def save(self, credentials: StoredCredentials) -> None:
        body = json.dumps(
            {
                "access_token": credentials.access_token,
                "refresh_token": credentials.refresh_token,
                "expires_at": credentials.expires_at,
            }
        )
        directory = os.path.dirname(os.path.abspath(self.path))
        with self._lock:
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".reauth-", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(body)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
                raise

    def clear(self) -> None:
        with self._lock:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def lock(self) -> AbstractContextManager:
        return self._lock

    def __repr__(self) -> str:
        return f"FileStore({self.path!r})"
