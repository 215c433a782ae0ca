"""What the PostgreSQL and Redis stores share: the §12.2 recipe across machines.

A shared store serves one grant (``grant_id``) out of a table or keyspace that holds many.
Its ``lock()`` is two locks: a re-entrant lock of this process (the adapters call
``lock()`` from several threads; one refresh runs at a time per grant) and, on the first
entry, the fleet's lock in the database, which a worker that dies or is cut off gives up
on its own after ``lock_ttl`` seconds at most.

Every stored grant carries a version that each write increments. A ``load()`` under the
lock remembers the version it read, and a ``save()`` under the lock writes only if the
version is still that one (compare-and-set): a worker whose lock expired while it was
paused or cut off can never overwrite a newer rotation (it gets :class:`StaleWrite`).
A save that fails on a dropped connection (a database restart) is retried on a new one,
with the same check, for up to ``lock_ttl`` seconds: the server has already rotated, so the
rotation must reach the store if it can.
"""

from __future__ import annotations

import math
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, TypeVar

from .store import StoredCredentials

T = TypeVar("T")

#: How long ``lock()`` waits for a sibling's refresh by default, in seconds: the core's
#: default refresh deadline (``Config.refresh_timeout_ms``), after which nobody waits.
DEFAULT_LOCK_WAIT = 30.0
#: How long the fleet's lock outlives a holder that stopped answering, in seconds:
#: longer than the refresh deadline, so a live refresh never loses its lock.
DEFAULT_LOCK_TTL = 40.0


class StoreUnavailable(ConnectionError):
    """The database could not be reached (or did not answer in time). The adapters report
    the refresh as transient: nobody is logged out by a database restart."""


class LockTimeout(TimeoutError):
    """Another worker held the grant's lock for longer than ``lock_wait``."""


class StaleWrite(RuntimeError):
    """A save under the lock found a newer version than the one its load read: the lock
    had expired and another worker stored a rotation meanwhile. Nothing was written."""


def check_grant_and_timing(grant_id: object, lock_wait: object, lock_ttl: object) -> None:
    if not isinstance(grant_id, str) or not grant_id:
        raise ValueError("grant_id must be a non-empty str")
    if any(c in grant_id for c in "\x00\r\n"):
        raise ValueError("grant_id must not contain NUL, CR or LF")
    try:
        encoded = grant_id.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("grant_id must be valid Unicode (no lone surrogates)") from None
    if len(encoded) > 200:
        raise ValueError("grant_id must be at most 200 bytes of UTF-8 (as in the Rust store)")
    for name, value in (("lock_wait", lock_wait), ("lock_ttl", lock_ttl)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number of seconds, not {value!r}")
        if not 0.001 <= value <= 3600:
            raise ValueError(f"{name} must be within 0.001..=3600 seconds, not {value!r}")
    if lock_ttl <= lock_wait:  # type: ignore[operator]
        raise ValueError(f"lock_ttl ({lock_ttl}) must exceed lock_wait ({lock_wait}): "
                         "a refresh must never outlive the lock it holds")


class SharedStore:
    """The bookkeeping of a fleet-wide store; subclasses do the I/O."""

    def __init__(self, grant_id: str, lock_wait: float, lock_ttl: float) -> None:
        check_grant_and_timing(grant_id, lock_wait, lock_ttl)
        self.grant_id = grant_id
        self.lock_wait = float(lock_wait)
        self.lock_ttl = float(lock_ttl)
        self._local = threading.RLock()
        self._depth = 0
        # The version a load under the lock read; None before one (a save then writes
        # whatever is there: a login's fresh credentials).
        self._read_version: Optional[int] = None

    # ----- what a subclass implements ---------------------------------------------

    def _acquire(self) -> None:
        """Takes the fleet's lock within ``lock_wait``: LockTimeout, StoreUnavailable."""
        raise NotImplementedError

    def _release(self) -> None:
        """Gives it back (best effort: it expires on its own)."""
        raise NotImplementedError

    def _read(self, locked: bool) -> "tuple[Optional[StoredCredentials], int]":
        """What is stored and its version (0 if the grant was never stored)."""
        raise NotImplementedError

    def _write(
        self, credentials: Optional[StoredCredentials], expect: Optional[int], locked: bool, fresh: bool = False
    ) -> Optional[int]:
        """Writes (``None`` clears) if the version is ``expect`` (any, if ``None``);
        the new version, or ``None`` if it was not ``expect``. ``fresh``: a retry, on a
        new connection rather than a pooled one."""
        raise NotImplementedError

    # ----- the CredentialStore protocol ---------------------------------------------

    @contextmanager
    def lock(self) -> Iterator[None]:
        if not self._local.acquire(timeout=self.lock_wait):
            raise LockTimeout(f"grant {self.grant_id!r}: this process's lock was not free within {self.lock_wait} s")
        try:
            if self._depth == 0:
                self._read_version = None
                self._acquire_retrying()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._read_version = None
                    self._release()
        finally:
            self._local.release()

    def _acquire_retrying(self) -> None:
        """``_acquire``, again on a failed connection while ``lock_wait`` lasts: after a
        restart a pool hands out connections the server already closed, one by one."""
        deadline = time.monotonic() + self.lock_wait
        while True:
            try:
                return self._acquire()
            except StoreUnavailable:
                if time.monotonic() + 0.05 > deadline:
                    raise
            time.sleep(0.05)

    def _holding(self) -> bool:
        # RLock has no public "owned by me"; _is_owned is what Condition uses.
        return self._depth > 0 and self._local._is_owned()  # type: ignore[attr-defined]

    def load(self) -> Optional[StoredCredentials]:
        holding = self._holding()
        credentials, version = self._read(holding)
        if holding:
            self._read_version = version
        return credentials

    def save(self, credentials: StoredCredentials) -> None:
        check_credentials(credentials)
        self._store(credentials)

    def clear(self) -> None:
        """Clears the grant for the whole fleet (a logout ends the grant, not a worker):
        unconditional, like the Rust store's."""
        self._retrying(lambda attempt: self._write(None, None, False))
        if self._holding():
            self._read_version = None

    def _store(self, credentials: StoredCredentials) -> None:
        holding = self._holding()
        expect = self._read_version if holding else None
        tries = [0]

        def write(attempt: int) -> Optional[int]:
            tries[0] = attempt
            return self._write(credentials, expect, holding and attempt == 0, attempt > 0)

        written = self._retrying(write)
        if written is None and tries[0] > 0:
            # A retried write that finds another version may have found its own: the
            # first try's reply was lost after it landed.
            stored, version = self._read(False)
            if stored == credentials:
                written = version
        if written is None:
            raise StaleWrite(f"grant {self.grant_id!r}: a newer version was stored since this worker read "
                             f"version {expect} (its lock expired?); nothing written")
        if holding:
            self._read_version = written

    def _retrying(self, write: Callable[[int], T]) -> T:
        """Runs ``write`` until it did not fail on the connection, for ``lock_ttl``
        seconds at most (a restart takes a few); the last failure is raised."""
        deadline = time.monotonic() + self.lock_ttl
        attempt, pause = 0, 0.05
        while True:
            try:
                return write(attempt)
            except StoreUnavailable:
                if time.monotonic() + pause > deadline:
                    raise
            # Short and steady: the first moment the database is back, this save should
            # land before a sibling (whose lock attempts failed meanwhile) reads the store.
            time.sleep(pause)
            attempt += 1


#: The widest expiry both languages read back (seconds from the epoch, either side).
MAX_EXPIRY = 1e12


def finite_or_none(value: object, what: str) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number or None")
    if abs(value) > MAX_EXPIRY:
        raise ValueError(f"{what} must be within ±{MAX_EXPIRY:.0e} seconds of the epoch")
    return float(value)


def check_credentials(credentials: object) -> None:
    """What every worker, in either language, can read back: refused here, never
    written (a bad save would break the grant for the whole fleet)."""
    if not isinstance(credentials, StoredCredentials):
        raise TypeError(f"save() takes StoredCredentials, not {type(credentials).__name__}")
    for name, token, optional in (("access_token", credentials.access_token, False),
                                  ("refresh_token", credentials.refresh_token, True)):
        if token is None and optional:
            continue
        if not isinstance(token, str) or not token:
            raise ValueError(f"{name} must be a non-empty str")
        if "\x00" in token:
            raise ValueError(f"{name} must not contain NUL")
        try:
            token.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{name} must be valid Unicode (no lone surrogates)") from None
    finite_or_none(credentials.expires_at, "expires_at")
