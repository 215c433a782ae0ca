"""The host side of the contract, shared by the HTTP adapters: routes every command to
the request waiting for it, runs refreshes on a worker thread, keeps the one timer
armed, persists credentials and reports logouts.

Every core call and the routing of its batch happen under one lock, so batches are
carried out in the order the core produced them (a ``StoreCredentials`` is never
overtaken by an older one). Nothing under that lock blocks: waking a waiter, starting a
refresh thread and writing the store are all quick.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
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
)
from .store import CredentialStore, MemoryStore, StoredCredentials

log = logging.getLogger("reauth")


def now_ms() -> int:
    """The core's clock: this process's monotonic clock in milliseconds."""
    return int(time.monotonic() * 1000)


@dataclass(frozen=True)
class RefreshOutcome:
    """What a token-endpoint call came to."""

    credentials: Optional[Credentials] = None
    #: ``None`` with credentials; else ``RefreshFailure.REJECTED()`` or ``TRANSIENT(...)``.
    failure: Optional[RefreshFailure] = None


@dataclass(frozen=True)
class Event:
    """What a waiting request is told: ``send`` (with the token), ``complete`` or ``fail``."""

    kind: str
    token: Optional[str] = None
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
            self._loop.call_soon_threadsafe(self._queue.put_nowait, event)

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
    """Drives one coordinator for an HTTP adapter (see :class:`reauth.httpx.ReauthAuth`)."""

    def __init__(
        self,
        refresh: Callable[[str], RefreshOutcome],
        *,
        config: Optional[Config] = None,
        credentials: Optional[Credentials] = None,
        store: Optional[CredentialStore] = None,
        on_logout: Optional[Callable[[LogoutReason], None]] = None,
    ) -> None:
        self._core = Coordinator(config if config is not None else Config())
        self._refresh_call = refresh
        self._store: CredentialStore = store if store is not None else MemoryStore()
        self._on_logout = on_logout
        self._lock = threading.RLock()
        self._waiters: Dict[int, Waiter] = {}
        self._timer_cond = threading.Condition(self._lock)
        self._closed = False
        self._timer = threading.Thread(target=self._run_timer, name="reauth-timer", daemon=True)
        self._timer.start()
        if credentials is not None:
            self._store_credentials(credentials)
            self._apply(lambda now: self._core.login(now, credentials))
        else:
            stored = self._store.load()
            if stored is not None:
                self._apply(lambda now: self._core.login(now, stored.to_credentials()))

    # ----- inputs -----------------------------------------------------------------

    def submit(self, options: RequestOptions, loop: Optional[asyncio.AbstractEventLoop]) -> Waiter:
        with self._lock:
            now = now_ms()
            submitted = self._core.submit(now, options)
            # Registered before the batch is routed, and under the lock every core call
            # takes: no command for it can be produced before it is here.
            waiter = Waiter(submitted.id, loop)
            self._waiters[submitted.id] = waiter
            self._route(submitted.commands, now)
            return waiter

    def response(self, waiter: Waiter, status: int) -> None:
        self._apply(lambda now: self._core.handle_response(now, waiter.id, status))

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
        """Starts a session with credentials the app obtained (and stores them)."""
        with self._lock:
            self._store_credentials(credentials)
            self._apply(lambda now: self._core.login(now, credentials))

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
        with self._lock:
            self._closed = True
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
                    args=(command.attempt, command.refresh_token.expose()),
                    name=f"reauth-refresh-{command.attempt}",
                    daemon=True,
                ).start()
            elif command.is_store_credentials():
                expires_at = None
                if command.expires_at is not None:
                    expires_at = time.time() + (command.expires_at - now) / 1000
                self._store.save(
                    StoredCredentials(
                        command.access_token.expose(),
                        command.refresh_token.expose() if command.refresh_token else None,
                        expires_at,
                    )
                )
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

    def _store_credentials(self, credentials: Credentials) -> None:
        lifetime = credentials.expires_in_ms()
        refresh = credentials.refresh_token()
        self._store.save(
            StoredCredentials(
                credentials.access_token().expose(),
                refresh.expose() if refresh else None,
                None if lifetime is None else time.time() + lifetime / 1000,
            )
        )

    # ----- the refresh worker and the timer -----------------------------------------

    def _run_refresh(self, attempt: int, refresh_token: str) -> None:
        """§12.2: under the store's lock, adopt a sibling's rotation, else call the
        server; on a rejection, re-read the store once before reporting it."""
        try:
            with self._store.lock():
                outcome = self._sibling(refresh_token)
                if outcome is None:
                    outcome = self._refresh_call(refresh_token)
                    if outcome.failure is not None and outcome.failure.is_rejected():
                        outcome = self._sibling(refresh_token) or outcome
                if outcome.credentials is not None:
                    # Visible to siblings before the lock is released.
                    self._store_credentials(outcome.credentials)
                    self._apply(
                        lambda now: self._core.handle_refresh_succeeded(now, attempt, outcome.credentials),
                        quiet=True,
                    )
                    return
            failure = outcome.failure or RefreshFailure.TRANSIENT(retry_after_ms=None)
            self._apply(lambda now: self._core.handle_refresh_failed(now, attempt, failure), quiet=True)
        except Exception:
            log.exception("reauth: refresh attempt %d failed unexpectedly; reported as transient", attempt)
            self._apply(
                lambda now: self._core.handle_refresh_failed(
                    now, attempt, RefreshFailure.TRANSIENT(retry_after_ms=None)
                ),
                quiet=True,
            )

    def _sibling(self, refresh_token: str) -> Optional[RefreshOutcome]:
        stored = self._store.load()
        if stored is not None and stored.refresh_token and stored.refresh_token != refresh_token:
            log.info("reauth: adopting credentials another process rotated")
            return RefreshOutcome(credentials=stored.to_credentials())
        return None

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

