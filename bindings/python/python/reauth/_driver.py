"""What the HTTP adapters share in Python: waking a request that waits, the refresh
worker thread, the one timer, and the calls into the host layer.

Everything the host decides — which waiting request gets which command, reading the
token endpoint's answer, which refresh token to present, what to store, the default
route of a request, whether a refusal is the caller's — is the Rust ``reauth-host``
crate's (``docs/contract.md`` §12), reached through ``reauth._native``; this module keeps
only what Python must do itself.

Each event is one call into native code that returns one integer, the step packed as
``reauth_host::wire`` documents: the request the event was about gets its own command
back at once (in the steady state a request never waits, so it needs no waiter), and
only a step that asks more — other requests to wake, a refresh to start, a logout, a new
token — costs a second call for its bytes. No Python lock is held across a native call,
the store, the network or the app's hook: the one lock here guards the table of waiters.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import json
import logging
import struct
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from ._native import (
    Config,
    Credentials,
    FailReason,
    LogoutReason,
    ReauthError,
    RefreshFailure,
    Stats,
    StoreRecord as _Stored,
    Token,
    TokenAnswer,
    after_rejection,
    driver_abandon,
    driver_close,
    driver_config,
    driver_deadline,
    driver_force_refresh,
    driver_free,
    driver_is_logged_in,
    driver_login,
    driver_logout,
    driver_new,
    driver_refresh_failed,
    driver_refresh_succeeded,
    driver_response,
    driver_response_challenged,
    driver_record,
    driver_stats,
    driver_submit,
    driver_trace_json,
    explain_transcript,
    driver_take_more,
    driver_timeout,
    keep_rotation,
    plan_refresh,
    stored_from_login,
    stored_to_credentials,
    wire_fail_reasons,
    wire_logout_reasons,
)
from .store import CredentialStore, MemoryStore, StoredCredentials

log = logging.getLogger("reauth")

#: The flight recorder's default capacity: the last 64 inputs (at least; fewer than 128).
DEFAULT_FLIGHT_RECORDER = 64


class Recording:
    """A flight recording: the coordinator's last inputs, the commands each produced and
    the contract rule behind each command, every token replaced by a placeholder.
    ``json`` is a transcript (``tests/vectors`` format) that replays the incident in every
    reauth replayer; :meth:`explain` prints it as a timeline that ends with why the
    session ended."""

    def __init__(self, transcript_json: str) -> None:
        self.json = transcript_json

    def explain(self) -> str:
        """The timeline (the core's explanation, as ``python -m reauth.explain``)."""
        return explain_transcript(self.json)

    def __len__(self) -> int:
        return len(json.loads(self.json)["steps"])

    def __repr__(self) -> str:
        return f"Recording({len(self)} inputs)"


def _takes_recording(hook: Optional[Callable[..., None]]) -> bool:
    """Whether the logout hook takes a second argument (the recording)."""
    if hook is None:
        return False
    try:
        parameters = inspect.signature(hook).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in parameters)


def _check_lock_outlives_refresh(store: object, refresh_timeout_ms: int) -> None:
    """A shared store's lock must outlive the longest refresh (the core's deadline): a
    lock that expires while its holder still waits for the token endpoint lets a sibling
    present the same refresh token."""
    ttl = getattr(store, "lock_ttl", None)
    if isinstance(ttl, (int, float)) and ttl * 1000 <= refresh_timeout_ms:
        raise ValueError(f"the store's lock_ttl ({ttl} s) must exceed the refresh deadline "
                         f"(Config.refresh_timeout_ms = {refresh_timeout_ms} ms)")


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
    """What a request does now: ``send`` (with the token), ``complete``, ``fail``,
    ``callers_answer`` (§12.4: the response as it is) or ``closed``."""

    kind: str
    token: Optional[str] = field(default=None, repr=False)
    reason: Optional[FailReason] = None


# The packed step (reauth_host::wire): bits 0-2 own kind, 3-6 fail code, 7 more, 8 the
# deadline moved, 9.. the request id.
_OWN_WAIT, _OWN_SEND, _OWN_COMPLETE, _OWN_FAIL, _OWN_CALLERS_ANSWER = range(5)
_MORE, _DEADLINE = 1 << 7, 1 << 8
_WAKE_SEND, _WAKE_COMPLETE, _WAKE_FAIL, _WAKE_CLOSED = 1, 2, 3, 5
_FAIL_REASONS = wire_fail_reasons()
_LOGOUT_REASONS = wire_logout_reasons()
_HEADER = struct.Struct("<QHHIB")
_TEXT = struct.Struct("<QI")
_WAKE = struct.Struct("<QBBQ")
_COMPLETE = Event("complete")
_CLOSED = Event("closed")
_CALLERS_ANSWER = Event("callers_answer")


class Waiter:
    """The one wake of a request that waits, delivered to a thread or an asyncio task."""

    __slots__ = ("_loop", "_lock", "_event", "_future")

    def __init__(self, loop: Optional[asyncio.AbstractEventLoop]) -> None:
        self._loop = loop
        self._event: Optional[Event] = None
        if loop is None:
            self._lock = threading.Lock()
            self._lock.acquire()
        else:
            self._future: "asyncio.Future[Event]" = loop.create_future()

    def put(self, event: Event) -> None:
        if self._loop is None:
            self._event = event
            self._lock.release()
        elif _running_loop() is self._loop:
            if not self._future.done():
                self._future.set_result(event)
        else:
            try:
                self._loop.call_soon_threadsafe(_settle, self._future, event)
            except RuntimeError:
                pass  # its event loop is closed: nobody waits any more

    def wait(self) -> Event:
        self._lock.acquire()
        assert self._event is not None
        return self._event

    async def wait_async(self) -> Event:
        return await self._future


def _settle(future: "asyncio.Future[Event]", event: Event) -> None:
    if not future.done():
        future.set_result(event)


def _running_loop() -> Optional[asyncio.AbstractEventLoop]:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class Driver:
    """Drives one native host driver for an HTTP adapter (see
    :class:`reauth.httpx.ReauthAuth`).

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
        on_logout: Optional[Callable[..., None]] = None,
        flight_recorder: int = DEFAULT_FLIGHT_RECORDER,
    ) -> None:
        if not isinstance(flight_recorder, int) or flight_recorder < 0 or flight_recorder > 2**32 - 1:
            raise ValueError(f"flight_recorder must be an int in 0..=4294967295, not {flight_recorder!r}")
        self._handle = driver_new(config if config is not None else Config())
        if flight_recorder:
            driver_record(self._handle, flight_recorder)
        self._recording = flight_recorder > 0
        self._hook_takes_recording = _takes_recording(on_logout)
        self._finalizer = weakref.finalize(self, driver_free, self._handle)
        self._call_endpoint = call_endpoint
        self._store: CredentialStore = store if store is not None else MemoryStore()
        _check_lock_outlives_refresh(self._store, driver_config(self._handle).refresh_timeout_ms)
        self._on_logout = on_logout
        # The access token this process holds: (generation, text); generation 0 is none.
        self._token: Tuple[int, Optional[str]] = (0, None)
        # Requests that wait, and wakes that came before their request registered.
        self._mailbox = threading.Lock()
        self._waiters: Dict[int, Waiter] = {}
        self._early: Dict[int, Event] = {}
        # The last requests abandoned: a wake made before the abandon but carried out
        # after it is dropped, not kept in `_early` for nobody.
        self._abandoned: "collections.deque[int]" = collections.deque(maxlen=256)
        self._timer_cond = threading.Condition()
        self._poked = False
        self._closed = False
        statuses = driver_config(self._handle).refresh_statuses
        self.refresh_statuses = frozenset([401] if statuses is None else statuses)
        # Log in before the timer starts: invalid credentials raise here, store nothing
        # and leave no thread behind.
        if credentials is not None:
            self.login(credentials)
        else:
            stored = self._store.load()
            if stored is not None:
                restored = stored_to_credentials(to_native(stored), wall_ms())
                self._step(driver_login(self._handle, now_ms(), restored))
        self._timer = threading.Thread(target=self._run_timer, name="reauth-timer", daemon=True)
        self._timer.start()

    # ----- a request's events -----------------------------------------------------------

    def submit(self, replayable: bool, refresh: bool, route: int) -> Tuple[int, Optional[Event]]:
        """A request wants to go out: its id and what it does now (``None``: it waits;
        call :meth:`wait`). Raises :class:`Closed` after :meth:`close`."""
        token = self._token
        try:
            packed = driver_submit(self._handle, now_ms(), replayable, refresh, route or 0, token[0])
        except ReauthError.Closed:
            raise Closed("reauth is closed: the request was not sent") from None
        return packed >> 9, self._own(packed, token)

    def response(self, request_id: int, status: int, www_authenticate: List[str]) -> Optional[Event]:
        """Reports a response; what the request does now (``None``: it waits). Raises
        :class:`Closed` for a request that was on the wire when the adapter closed."""
        token = self._token
        try:
            if www_authenticate and status in self.refresh_statuses:
                packed = driver_response_challenged(
                    self._handle, now_ms(), request_id, status, www_authenticate, token[0]
                )
            else:
                packed = driver_response(self._handle, now_ms(), request_id, status, token[0])
        except ReauthError.Closed:
            raise Closed("reauth is closed: the response was dropped") from None
        return self._own(packed, token)

    def wait(self, request_id: int, loop: Optional[asyncio.AbstractEventLoop]) -> Waiter:
        """The waiter of a request told to wait; its wake may have come already."""
        waiter = Waiter(loop)
        with self._mailbox:
            event = self._early.pop(request_id, None)
            if event is None:
                self._waiters[request_id] = waiter
        if event is not None:
            waiter.put(event)
        return waiter

    def abandon(self, request_id: int) -> None:
        """The request ends without a response (its caller is gone): a transport error if
        it was in flight (rule 7.17), a cancel if it waited, nothing if it had ended."""
        with self._mailbox:
            self._waiters.pop(request_id, None)
            self._early.pop(request_id, None)
            self._abandoned.append(request_id)
        try:
            self._step(driver_abandon(self._handle, now_ms(), request_id))
        except ReauthError as e:  # only a poisoned driver: nothing left to end
            log.error("reauth: could not end request %d (%s)", request_id, e)

    # ----- the app's controls -------------------------------------------------------------

    def login(self, credentials: Credentials) -> None:
        """Starts a session with credentials the app obtained, and stores them — only
        once the core accepted them: refused credentials raise and change nothing. Both
        under the store's lock: a refresh of the new session takes it first, so it never
        reads the store before the new credentials are in it (§12.2)."""
        with self._store.lock():
            packed = driver_login(self._handle, now_ms(), credentials)
            self._store.save(from_native(stored_from_login(credentials, wall_ms())))
        self._step(packed)

    def logout(self) -> None:
        self._step(driver_logout(self._handle, now_ms()))

    def force_refresh(self) -> None:
        self._step(driver_force_refresh(self._handle, now_ms()))

    def stats(self) -> Stats:
        return driver_stats(self._handle)

    def is_logged_in(self) -> bool:
        return driver_is_logged_in(self._handle)

    def close(self) -> None:
        """Every request waiting for a command ends now with :class:`Closed`; later
        requests raise it at once; the timer stops. The session and the store are kept."""
        self._step(driver_close(self._handle, now_ms()))
        with self._timer_cond:
            self._closed = True
            self._timer_cond.notify_all()

    # ----- carrying out a step --------------------------------------------------------------

    def _own(self, packed: int, token: Tuple[int, Optional[str]]) -> Optional[Event]:
        """Carries out the step's other half, then returns the request's own event."""
        tokens = self._more() if packed & _MORE else None
        if packed & _DEADLINE:
            self._poke_timer()
        kind = packed & 7
        if kind == _OWN_SEND:
            # The bytes carry the token when it is not the one passed in (`known`).
            text = tokens[1].get(tokens[0]) if tokens is not None else None
            return Event("send", token=text if text is not None else token[1])
        if kind == _OWN_WAIT:
            return None
        if kind == _OWN_COMPLETE:
            return _COMPLETE
        if kind == _OWN_FAIL:
            return Event("fail", reason=_FAIL_REASONS[packed >> 3 & 15])
        return _CALLERS_ANSWER

    def _step(self, packed: int) -> None:
        """Carries out a step about no request of the caller's."""
        if packed & _MORE:
            self._more()
        if packed & _DEADLINE:
            self._poke_timer()

    def _more(self) -> Tuple[int, Dict[int, str]]:
        """Reads this thread's step bytes and carries them out: the logout, then wakes,
        then refreshes. Returns the own send's generation and the token table."""
        buf = driver_take_more()
        own_generation, n_tokens, n_refreshes, n_wakes, logout = _HEADER.unpack_from(buf, 0)
        at = _HEADER.size
        tokens: Dict[int, str] = {}
        for _ in range(n_tokens):
            generation, length = _TEXT.unpack_from(buf, at)
            at += _TEXT.size
            tokens[generation] = buf[at:at + length].decode()
            at += length
        refreshes = []
        for _ in range(n_refreshes):
            attempt, length = _TEXT.unpack_from(buf, at)
            at += _TEXT.size
            refreshes.append((attempt, buf[at:at + length].decode()))
            at += length
        if tokens:
            newest = max(tokens)
            if newest > self._token[0]:
                self._token = (newest, tokens[newest])
        if logout:
            # First: a request that sees its failure finds the store cleared and the app told.
            self._logged_out(_LOGOUT_REASONS[logout - 1])
        for _ in range(n_wakes):
            request_id, kind, code, generation = _WAKE.unpack_from(buf, at)
            at += _WAKE.size
            if kind == _WAKE_SEND:
                event = Event("send", token=tokens[generation])
            elif kind == _WAKE_COMPLETE:
                event = _COMPLETE
            elif kind == _WAKE_FAIL:
                event = Event("fail", reason=_FAIL_REASONS[code])
            else:
                event = _CLOSED
            self._deliver(request_id, event)
        for attempt, refresh_token in refreshes:
            threading.Thread(
                target=self._run_refresh,
                args=(attempt, Token(refresh_token)),
                name=f"reauth-refresh-{attempt}",
                daemon=True,
            ).start()
        return own_generation, tokens

    def _deliver(self, request_id: int, event: Event) -> None:
        with self._mailbox:
            waiter = self._waiters.pop(request_id, None)
            if waiter is None:
                if request_id not in self._abandoned:  # told to wait, not registered yet
                    self._early[request_id] = event
                return
        waiter.put(event)

    def recording(self) -> Recording:
        """What the flight recorder holds now (no steps when it is off)."""
        return Recording(driver_trace_json(self._handle))

    def _logged_out(self, reason: LogoutReason) -> None:
        log.info("reauth: logged out (%s)", reason.name.lower())
        try:
            self._store.clear()
        except Exception:
            log.exception("reauth: could not clear the credential store")
        recording = self.recording() if self._recording else None
        if recording is not None and reason != LogoutReason.REQUESTED:
            log.debug(
                "reauth: the session ended (%s); its flight recording (python -m reauth.explain FILE explains it): %s",
                reason.name.lower(),
                recording.json,
            )
        if self._on_logout is not None:
            try:
                if self._hook_takes_recording:
                    self._on_logout(reason, recording or Recording(driver_trace_json(self._handle)))
                else:
                    self._on_logout(reason)
            except Exception:
                log.exception("reauth: the on_logout callback raised")

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
                    # Visible to siblings before the lock is released. A failed save does
                    # not undo the refresh: the server has rotated, and this process now
                    # holds the only live refresh token (a shared store retries the save
                    # itself while it can; see reauth.postgres, reauth.redis).
                    try:
                        self._store.save(from_native(stored_from_login(credentials, wall_ms())))
                    except Exception as e:
                        log.error("reauth: could not store the refreshed credentials (%s: %s); "
                                  "other processes sharing the store will not see this rotation",
                                  type(e).__name__, e)
        except Exception:
            log.exception("reauth: refresh attempt %d failed unexpectedly; reported as transient", attempt)
            credentials = None
            failure = RefreshFailure.TRANSIENT(retry_after_ms=None)
        try:
            if credentials is not None:
                self._step(driver_refresh_succeeded(self._handle, now_ms(), attempt, credentials))
            else:
                self._step(driver_refresh_failed(self._handle, now_ms(), attempt, failure))
        except ReauthError as e:
            # Closed, or an attempt the core gave up on (its deadline passed): nothing waits.
            log.debug("reauth: refresh attempt %d reported late (%s)", attempt, e)

    def _poke_timer(self) -> None:
        with self._timer_cond:
            self._poked = True
            self._timer_cond.notify()

    def _run_timer(self) -> None:
        """Calls the driver's timeout at its deadline; a step that moved the deadline
        pokes it to read the deadline again."""
        while True:
            with self._timer_cond:
                self._poked = False
                if self._closed:
                    return
            deadline = driver_deadline(self._handle)
            now = now_ms()
            if deadline is not None and deadline <= now:
                try:
                    self._step(driver_timeout(self._handle, now))
                except ReauthError.Closed:
                    return
                continue
            with self._timer_cond:
                if not self._poked and not self._closed:
                    self._timer_cond.wait(None if deadline is None else (deadline - now) / 1000)
