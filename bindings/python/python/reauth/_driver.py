"""What the HTTP adapters share in Python: waking the request waiting for each command,
the refresh worker thread, the one timer, and the calls into the host layer.

Everything the host decides — reading the token endpoint's answer, which refresh token to
present, what to store, the default route of a request, whether a refusal is the
caller's — is the Rust ``reauth-host`` crate's (``docs/contract.md`` §12), reached
through ``reauth._native``; this module keeps only what Python must do itself.

Every core call and the routing of its batch happen under one lock, so batches are
carried out in the order the core produced them. Nothing under that lock blocks for
long: waking a waiter, starting a refresh thread and clearing the store on a logout.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from ._native import (
    Command,
    Config,
    Coordinator,
    Credentials,
    FailReason,
    LogoutReason,
    RefreshFailure,
    RequestOptions,
    Stats,
    StoreRecord as _Stored,
    Token,
    TokenAnswer,
    after_rejection,
    is_callers_answer,
    keep_rotation,
    plan_refresh,
    stored_from_login,
    stored_to_credentials,
)
from .store import CredentialStore, MemoryStore, StoredCredentials

log = logging.getLogger("reauth")


class Closed(Exception):
    """The adapter was closed: the request was not sent, or its wait ended."""


def now_ms() -> int:
    """The core's clock: this process's monotonic clock in milliseconds."""
    return int(time.monotonic() * 1000)


def wall_ms() -> int:
    """The wall clock, for expiries that outlive the process (§12.1)."""
    return int(time.time() * 1000)


def is_utf8(text: object) -> bool:
    """Whether a str can cross into native code (a lone surrogate cannot)."""
    try:
        text.encode("utf-8")  # type: ignore[union-attr]
    except UnicodeEncodeError:
        return False
    return True


def _utf8(text: str, what: str) -> str:
    """``text`` if it can cross into native code. A lone surrogate would otherwise raise
    a ``UnicodeEncodeError`` holding the whole token (in ``.object`` and ``.args``); this
    raises outside any ``except`` block, so not even ``__context__`` keeps it."""
    if not is_utf8(text):
        raise ValueError(f"{what} is not valid UTF-8 (it holds a lone surrogate)")
    return text


def to_native(stored: Optional[StoredCredentials]) -> Optional[_Stored]:
    """A store's credentials as the host layer reads them (expiry in wall-clock ms)."""
    if stored is None:
        return None
    return _Stored(
        access_token=Token(_utf8(stored.access_token, "the stored access token")),
        refresh_token=None
        if stored.refresh_token is None
        else Token(_utf8(stored.refresh_token, "the stored refresh token")),
        expires_at_ms=None if stored.expires_at is None else int(stored.expires_at * 1000),
    )


def from_native(stored: _Stored) -> StoredCredentials:
    """What the host layer decided to store, as the Python stores keep it."""
    return StoredCredentials(
        stored.access_token.expose(),
        None if stored.refresh_token is None else stored.refresh_token.expose(),
        None if stored.expires_at_ms is None else stored.expires_at_ms / 1000,
    )


@dataclass(frozen=True)
class Event:
    """What a waiting request is told: ``send`` (with the token), ``complete``, ``fail``
    or ``closed``."""

    kind: str
    token: Optional[str] = field(default=None, repr=False)
    reason: Optional[FailReason] = None


class Waiter:
    """The events of one request, delivered to a thread or to an asyncio task."""

    def __init__(self, request_id: int, loop: Optional[asyncio.AbstractEventLoop]) -> None:
        self.id = request_id
        self.done = False
        self._loop = loop
        if loop is None:
            self._cond = threading.Condition()
            self._events: List[Event] = []
        else:
            self._queue: "asyncio.Queue[Event]" = asyncio.Queue()

    def put(self, event: Event) -> None:
        if self._loop is None:
            with self._cond:
                self._events.append(event)
                self._cond.notify()
        elif _running_loop() is self._loop:
            self._queue.put_nowait(event)
        else:
            try:
                self._loop.call_soon_threadsafe(self._queue.put_nowait, event)
            except RuntimeError:
                pass  # its event loop is closed: nobody waits any more

    def wait(self) -> Event:
        with self._cond:
            while not self._events:
                self._cond.wait()
            return self._events.pop(0)

    async def wait_async(self) -> Event:
        return await self._queue.get()


def _running_loop() -> Optional[asyncio.AbstractEventLoop]:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class Driver:
    """Drives one coordinator for an HTTP adapter (see :class:`reauth.httpx.ReauthAuth`).

    ``call_endpoint(refresh_token)`` performs one token-endpoint call and returns what
    ``reauth._native.read_token_response`` made of it.
    """

    def __init__(
        self,
        call_endpoint: Callable[[Token], TokenAnswer],
        *,
        config: Optional[Config] = None,
        credentials: Optional[Credentials] = None,
        store: Optional[CredentialStore] = None,
        on_logout: Optional[Callable[[LogoutReason], None]] = None,
    ) -> None:
        self._core = Coordinator(config if config is not None else Config())
        self._call_endpoint = call_endpoint
        self._store: CredentialStore = store if store is not None else MemoryStore()
        self._on_logout = on_logout
        self._lock = threading.RLock()
        self._waiters: Dict[int, Waiter] = {}
        self._timer_cond = threading.Condition(self._lock)
        self._closed = False
        statuses = self._core.config().refresh_statuses
        self.refresh_statuses = frozenset([401] if statuses is None else statuses)
        # Log in before the timer starts: invalid credentials raise here, store nothing
        # and leave no thread behind.
        if credentials is not None:
            self.login(credentials)
        else:
            stored = self._store.load()
            if stored is not None:
                restored = stored_to_credentials(to_native(stored), wall_ms())
                self._apply(lambda now: self._core.login(now, restored))
        self._timer = threading.Thread(target=self._run_timer, name="reauth-timer", daemon=True)
        self._timer.start()

    # ----- inputs -----------------------------------------------------------------

    def submit(self, options: RequestOptions, loop: Optional[asyncio.AbstractEventLoop]) -> Waiter:
        with self._lock:
            if self._closed:
                raise Closed("reauth is closed: the request was not sent")
            now = now_ms()
            submitted = self._core.submit(now, options)
            # Registered before the batch is routed, and under the lock every core call
            # takes: no command for it can be produced before it is here.
            waiter = Waiter(submitted.id, loop)
            self._waiters[submitted.id] = waiter
            self._route(submitted.commands, now)
            return waiter

    def response(self, waiter: Waiter, status: int, www_authenticate: List[str]) -> bool:
        """Reports a response. ``False`` when it is the caller's answer as it is (an
        ``insufficient_scope`` refusal, §12.4): the request ended here, no refresh.
        Raises :class:`Closed` for a request that was on the wire when the adapter closed
        (its response is dropped, as in every adapter)."""
        if waiter.done and self._closed:
            raise Closed("reauth is closed: the response was dropped")
        if status in self.refresh_statuses and is_callers_answer(www_authenticate):
            with self._lock:
                if not waiter.done:
                    waiter.done = True
                    self._apply(lambda now: self._core.cancel(now, waiter.id), quiet=True)
                self._waiters.pop(waiter.id, None)
            return False
        self._apply(lambda now: self._core.handle_response(now, waiter.id, status))
        return True

    def abandon(self, waiter: Waiter) -> None:
        """The request ends without a response: a transport error if it was in flight
        (rule 7.17), a cancel if it was waiting. Nothing if it already ended."""
        with self._lock:
            if not waiter.done:
                waiter.done = True
                if self._core.is_in_flight(waiter.id):
                    self._apply(lambda now: self._core.handle_transport_error(now, waiter.id), quiet=True)
                else:
                    self._apply(lambda now: self._core.cancel(now, waiter.id), quiet=True)
            self._waiters.pop(waiter.id, None)

    def finished(self, waiter: Waiter) -> None:
        with self._lock:
            self._waiters.pop(waiter.id, None)

    def login(self, credentials: Credentials) -> None:
        """Starts a session with credentials the app obtained, and stores them — only
        once the core accepted them: refused credentials raise and change nothing."""
        with self._lock:
            self._apply(lambda now: self._core.login(now, credentials))
            self._store.save(from_native(stored_from_login(credentials, wall_ms())))

    def logout(self) -> None:
        self._apply(lambda now: self._core.logout(now))

    def force_refresh(self) -> None:
        self._apply(lambda now: self._core.force_refresh(now))

    def stats(self) -> Stats:
        return self._core.stats()

    @property
    def coordinator(self) -> Coordinator:
        return self._core

    def close(self) -> None:
        """Every request waiting for a command ends now with :class:`Closed`; later
        requests raise it at once; the timer stops. The session and the store are kept."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for waiter in list(self._waiters.values()):
                if not waiter.done:
                    waiter.done = True
                    self._apply(lambda now, w=waiter: self._core.cancel(now, w.id), quiet=True)
                    waiter.put(Event("closed"))
            self._waiters.clear()
            self._timer_cond.notify_all()

    # ----- routing ----------------------------------------------------------------

    def _apply(self, call: Callable[[int], List[Command]], quiet: bool = False) -> None:
        with self._lock:
            now = now_ms()
            try:
                commands = call(now)
            except Exception:
                if quiet:  # the request already ended (a late transport error, a cancel)
                    return
                raise
            self._route(commands, now)

    def _route(self, commands: List[Command], now: int) -> None:
        for command in commands:
            if command.is_send() or command.is_replay():
                self._tell(command.id, Event("send", token=command.access_token.expose()))
            elif command.is_complete():
                self._tell(command.id, Event("complete"))
            elif command.is_fail():
                self._tell(command.id, Event("fail", reason=command.reason))
            elif command.is_refresh():
                threading.Thread(
                    target=self._run_refresh,
                    args=(command.attempt, command.refresh_token),
                    name=f"reauth-refresh-{command.attempt}",
                    daemon=True,
                ).start()
            elif command.is_store_credentials():
                # Already in the store: _run_refresh wrote it under the store's lock before
                # reporting it. Written again now, after the lock, it could overwrite a
                # sibling's newer rotation with a spent refresh token (§12.2).
                pass
            elif command.is_logout():
                log.info("reauth: logged out (%s)", command.reason.name.lower())
                self._store.clear()
                if self._on_logout is not None:
                    try:
                        self._on_logout(command.reason)
                    except Exception:
                        log.exception("reauth: the on_logout callback raised")
        self._timer_cond.notify_all()

    def _tell(self, request_id: int, event: Event) -> None:
        waiter = self._waiters.get(request_id)
        if waiter is None:
            return  # its caller is gone (it ended without a response)
        if event.kind != "send":
            waiter.done = True
            self._waiters.pop(request_id, None)
        waiter.put(event)

    # ----- the refresh worker and the timer -----------------------------------------

    def _stored(self) -> Optional[_Stored]:
        return to_native(self._store.load())

    def _run_refresh(self, attempt: int, command_token: Token) -> None:
        """§12.2, §12.3: under the store's lock, adopt or follow what the store holds,
        else call the server; on a rejection, re-read the store once; keep a rotation
        from an unusable answer; store a success before the lock is released."""
        credentials: Optional[Credentials] = None
        failure = RefreshFailure.TRANSIENT(retry_after_ms=None)
        try:
            with self._store.lock():
                plan = plan_refresh(command_token, self._stored(), wall_ms())
                followed = False
                while True:
                    if plan.is_adopt():
                        log.info("reauth: adopting credentials another process rotated")
                        credentials = plan.credentials
                        break
                    sent = plan.refresh_token
                    answer = self._call_endpoint(sent)
                    if answer.is_succeeded():
                        if answer.note is not None:
                            log.warning("reauth: token response used despite a problem: %s", answer.note)
                        credentials = answer.credentials
                        break
                    if answer.is_rejected():
                        log.warning("reauth: token endpoint refused the refresh token (%s)", answer.error)
                        following = after_rejection(sent, self._stored(), wall_ms())
                        if following is not None and not followed:
                            followed, plan = True, following
                            continue
                        failure = RefreshFailure.REJECTED()
                        break
                    log.warning("reauth: refresh failed (%s); transient", answer.problem)
                    if answer.rotated_refresh_token is not None:
                        kept = keep_rotation(self._stored(), answer.rotated_refresh_token)
                        if kept is not None:
                            self._store.save(from_native(kept))
                        else:
                            log.error("reauth: a rotated refresh token arrived in an unusable answer "
                                      "and the store holds nothing to keep it with")
                    failure = RefreshFailure.TRANSIENT(retry_after_ms=answer.retry_after_ms)
                    break
                if credentials is not None:
                    # Visible to siblings before the lock is released.
                    self._store.save(from_native(stored_from_login(credentials, wall_ms())))
        except Exception:
            log.exception("reauth: refresh attempt %d failed unexpectedly; reported as transient", attempt)
            credentials = None
            failure = RefreshFailure.TRANSIENT(retry_after_ms=None)
        if credentials is not None:
            reported = credentials
            self._apply(lambda now: self._core.handle_refresh_succeeded(now, attempt, reported), quiet=True)
        else:
            self._apply(lambda now: self._core.handle_refresh_failed(now, attempt, failure), quiet=True)

    def _run_timer(self) -> None:
        with self._lock:
            while not self._closed:
                deadline = self._core.poll_timeout()
                now = now_ms()
                if deadline is not None and deadline <= now:
                    self._route(self._core.handle_timeout(now), now)
                    continue
                wait = None if deadline is None else (deadline - now) / 1000
                self._timer_cond.wait(wait)
