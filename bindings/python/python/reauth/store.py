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

import errno
import json
import logging
import math
import os
import stat
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Optional, Protocol, runtime_checkable

import filelock

from ._native import Credentials

try:
    import fcntl
except ImportError:  # Windows: the store's lock alone guards the temporary file
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("reauth")

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

    A save writes ``PATH.tmp`` (created with mode 0600), flushes it to disk, renames it
    over the file and flushes the directory, so a reader never sees half a write. The
    temporary file has that one fixed name, and it is written, renamed or removed only by
    a process holding an exclusive ``flock`` on it (checked, once locked, to still be the
    file named ``PATH.tmp``) — the same protocol as the Rust crate's ``FileStore``, which
    can share the file. A process killed mid-save (SIGKILL runs no cleanup) so leaves at
    most that one file, which the next save overwrites and the next load or clear
    removes. A lock file next to it (``PATH.lock``, via the ``filelock`` package)
    serialises refreshes across processes; it is re-entrant within one thread.

    A file that is not a credentials file raises ``ValueError`` naming the file and the
    field, never the tokens; loading a file other users can read or write logs a warning
    (logger ``reauth``).
    """

    def __init__(self, path: "os.PathLike[str] | str", lock_timeout: float = 60.0) -> None:
        self.path = os.path.expanduser(os.fspath(path))
        self._tmp = self.path + ".tmp"
        self._lock = filelock.FileLock(self.path + ".lock", timeout=lock_timeout)
        self._warned_mode: Optional[int] = None

    def load(self) -> Optional[StoredCredentials]:
        try:
            self._remove_leftover(blocking=False)
        except OSError:
            pass  # best effort: the next save or clear takes care of it
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return None
        with f:
            self._check_mode(os.fstat(f.fileno()).st_mode)
            data = f.read()
        return _parse(self.path, data)

    def save(self, credentials: StoredCredentials) -> None:
        try:
            body = json.dumps(
                {
                    "access_token": credentials.access_token,
                    "refresh_token": credentials.refresh_token,
                    "expires_at": credentials.expires_at,
                },
                allow_nan=False,
            ).encode("utf-8")
        except ValueError:
            raise ValueError(f"{self.path}: expires_at must be a finite number or None") from None
        with self._lock:
            fd = self._open_tmp(create=True, blocking=True)
            if fd is None:  # cannot happen: created and waited for
                raise OSError(f"{self._tmp}: could not create the temporary file")
            try:
                if hasattr(os, "fchmod"):
                    os.fchmod(fd, 0o600)  # a leftover of ours is 0600 already; make sure
                os.ftruncate(fd, 0)
                view = memoryview(body)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
                if fcntl is None:  # Windows renames no open file; the store's lock guards it
                    os.close(fd)
                    fd = -1
                os.replace(self._tmp, self.path)
            except BaseException:
                if fd >= 0 and fcntl is None:
                    os.close(fd)
                    fd = -1
                _unlink(self._tmp)  # still ours: the lock is held
                raise
            finally:
                if fd >= 0:
                    os.close(fd)  # releases the flock
            _fsync_directory(self.path)

    def clear(self) -> None:
        with self._lock:
            _unlink(self.path)
            self._remove_leftover(blocking=True)

    def lock(self) -> AbstractContextManager:
        return self._lock

    def __repr__(self) -> str:
        return f"FileStore({self.path!r})"

    def _open_tmp(self, create: bool, blocking: bool) -> Optional[int]:
        """A descriptor of ``PATH.tmp`` under an exclusive lock, checked to still be the
        file of that name; ``None`` if there is none (``create`` false) or, not
        ``blocking``, another process holds it. A symbolic link there is removed, never
        followed."""
        flags = os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
        if create:
            flags |= os.O_CREAT
        for _ in range(100):
            try:
                fd = os.open(self._tmp, flags, 0o600)
            except FileNotFoundError:
                if create:
                    raise
                return None
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.EMLINK) and os.path.islink(self._tmp):
                    _unlink(self._tmp)
                    continue
                raise
            try:
                if fcntl is not None:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
                    except BlockingIOError:
                        os.close(fd)
                        return None
                opened = os.fstat(fd)
                try:
                    named = os.lstat(self._tmp)
                except FileNotFoundError:
                    named = None
            except BaseException:
                os.close(fd)
                raise
            if named is not None and (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino):
                return fd
            os.close(fd)  # renamed or removed by its holder while we waited: again
        raise OSError(f"{self._tmp}: the temporary file keeps changing")

    def _remove_leftover(self, blocking: bool) -> None:
        """Removes what a save killed before its rename left (token text)."""
        if not os.path.lexists(self._tmp):
            return
        if fcntl is None:  # Windows: the store's lock guards the temporary file
            try:
                if blocking:
                    self._lock.acquire()
                else:
                    self._lock.acquire(timeout=0)
            except filelock.Timeout:
                return
            try:
                _unlink(self._tmp)
            finally:
                self._lock.release()
            return
        fd = self._open_tmp(create=False, blocking=blocking)
        if fd is None:
            return  # gone, or a live save is using it
        try:
            _unlink(self._tmp)
        finally:
            os.close(fd)

    def _check_mode(self, mode: int) -> None:
        if os.name != "posix":
            return
        mode = stat.S_IMODE(mode)
        if mode & 0o077 == 0:
            self._warned_mode = None
        elif mode != self._warned_mode:
            self._warned_mode = mode  # once per mode: the adapters load on every refresh
            log.warning(
                "%s has mode %04o: other users can read or change the tokens in it; run chmod 600 %s",
                self.path,
                mode,
                self.path,
            )


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_directory(path: str) -> None:
    """Makes a rename in ``path``'s directory durable, where the platform allows."""
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string" if value else "an empty string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _parse(path: str, data: bytes) -> StoredCredentials:
    """The stored credentials in ``data``; ``ValueError`` naming ``path`` and the field
    at fault, never a token's text."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a credentials file (not UTF-8 text)") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not a credentials file (invalid JSON at line {e.lineno} column {e.colno})") from None
    except ValueError:
        raise ValueError(f"{path}: not a credentials file (invalid JSON)") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: not a credentials file (the JSON is {_json_type(raw)}, not an object)")
    if "access_token" not in raw:
        raise ValueError(f'{path}: field "access_token" is missing')
    access = raw["access_token"]
    if not isinstance(access, str) or not access:
        raise ValueError(f'{path}: field "access_token" must be a non-empty string, got {_json_type(access)}')
    refresh = raw.get("refresh_token")
    if refresh is not None and not isinstance(refresh, str):
        raise ValueError(f'{path}: field "refresh_token" must be a string or null, got {_json_type(refresh)}')
    expires = raw.get("expires_at")
    if expires is not None:
        if isinstance(expires, bool) or not isinstance(expires, (int, float)):
            raise ValueError(f'{path}: field "expires_at" must be a number or null, got {_json_type(expires)}')
        try:
            finite = math.isfinite(float(expires))
        except OverflowError:
            finite = False
        if not finite:
            raise ValueError(f'{path}: field "expires_at" must be a finite number')
    return StoredCredentials(access_token=access, refresh_token=refresh, expires_at=expires)
