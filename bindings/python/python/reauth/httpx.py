"""An ``httpx.Auth`` that refreshes access tokens correctly, for sync and async clients.

    import httpx, reauth
    from reauth.httpx import ReauthAuth

    auth = ReauthAuth(
        token_url="https://auth.example.com/oauth/token",
        client_id="my-app",
        credentials=reauth.Credentials(access, refresh_token=refresh, expires_in_ms=3_600_000),
        on_logout=lambda reason: print("logged out:", reason),
    )
    with httpx.Client(auth=auth, base_url="https://api.example.com") as client:
        print(client.get("/me").json())

Every request is submitted to the coordinator and waits for its command: it goes out
with ``Authorization: Bearer …``, its status is reported, and on a 401 it waits for the
one refresh and is replayed with the new token. The refresh runs on its own client
(never through the authenticated one) on a worker thread; the token endpoint's answers
are mapped as RFC 6749 §5.2 says: 400/401 with an OAuth error → rejected (the session
ends); 5xx, 429, timeouts, connection errors and malformed bodies → transient, with the
server's ``Retry-After``. A request whose body is a stream cannot be sent twice: it is
submitted non-replayable, so a 401 hands its response to the caller.

A request the core fails raises :class:`RequestFailed` (``reason`` says why), except
``Unauthorized``, which hands the caller the 401/403 response itself, and ``Transport``,
which re-raises the transport error httpx raised.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from typing import AsyncGenerator, Callable, Dict, Generator, Optional

import httpx

from ._driver import Driver, Event, RefreshOutcome
from ._native import Config, Credentials, FailReason, LogoutReason, RefreshFailure, RequestOptions, Stats
from .store import CredentialStore

__all__ = ["ReauthAuth", "RequestFailed"]

log = logging.getLogger("reauth")


class RequestFailed(httpx.HTTPError):
    """The coordinator failed the request (``reason``: a :class:`reauth.FailReason`)."""

    def __init__(self, reason: FailReason, request: httpx.Request) -> None:
        super().__init__(f"request failed: {reason.name.lower()}")
        self.reason = reason
        self.request = request


class ReauthAuth(httpx.Auth):
    """Token refresh for ``httpx.Client`` and ``httpx.AsyncClient`` (one instance can
    serve several clients; its coordinator is shared)."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: Optional[str] = None,
        *,
        credentials: Optional[Credentials] = None,
        store: Optional[CredentialStore] = None,
        config: Optional[Config] = None,
        on_logout: Optional[Callable[[LogoutReason], None]] = None,
        token_client: Optional[httpx.Client] = None,
        token_timeout: float = 30.0,
    ) -> None:
        """``credentials`` start a session now (and are written to ``store``); without
        them the session is restored from ``store``, if it holds any. ``token_client``
        is the client the refresh runs on (default: a new ``httpx.Client``; never pass
        the authenticated one)."""
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._token_client = token_client or httpx.Client(timeout=token_timeout)
        self._driver = Driver(
            self._call_token_endpoint,
            config=config,
            credentials=credentials,
            store=store,
            on_logout=on_logout,
        )

    # ----- the app's controls ---------------------------------------------------------

    def login(self, credentials: Credentials) -> None:
        """Starts (or replaces) the session with credentials the app obtained."""
        self._driver.login(credentials)

    def logout(self) -> None:
        """Ends the session: waiting requests fail ``LoggedOut``, the store is cleared and
        ``on_logout(LogoutReason.REQUESTED)`` runs."""
        self._driver.logout()

    def force_refresh(self) -> None:
        """The app knows the token is bad (a push said so): the next request refreshes."""
        self._driver.force_refresh()

    def stats(self) -> Stats:
        """The coordinator's counters."""
        return self._driver.stats()

    @property
    def is_logged_in(self) -> bool:
        return self._driver.coordinator.is_logged_in()

    def close(self) -> None:
        """Stops the timer thread and closes the token client."""
        self._driver.close()
        self._token_client.close()

    # ----- httpx.Auth ---------------------------------------------------------------

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        waiter = self._driver.submit(_options(request), loop=None)
        response: Optional[httpx.Response] = None
        try:
            while (to_send := _on_event(waiter.wait(), request, response)) is not None:
                response = yield to_send
                self._driver.response(waiter, response.status_code)
        except BaseException:
            # httpx closed the flow at a `yield` (a transport error: rule 7.17), or the
            # caller gave up: the request ends here.
            self._driver.abandon(waiter)
            raise
        finally:
            self._driver.finished(waiter)

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        waiter = self._driver.submit(_options(request), loop=asyncio.get_running_loop())
        response: Optional[httpx.Response] = None
        try:
            while (to_send := _on_event(await waiter.wait_async(), request, response)) is not None:
                response = yield to_send
                self._driver.response(waiter, response.status_code)
        except BaseException:
            self._driver.abandon(waiter)  # as in sync_auth_flow
            raise
        finally:
            self._driver.finished(waiter)

    # ----- the token endpoint (RFC 6749 §6, §5.1, §5.2) -------------------------------

    def _call_token_endpoint(self, refresh_token: str) -> RefreshOutcome:
        form: Dict[str, str] = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": self._client_id,
        }
        if self._client_secret is not None:
            form["client_secret"] = self._client_secret
        try:
            response = self._token_client.post(self._token_url, data=form, headers={"Accept": "application/json"})
            body = response.content
        except httpx.HTTPError as e:
            log.warning("reauth: token endpoint unreachable (%s); transient", e.__class__.__name__)
            return _transient(None)
        return _classify(response.status_code, response.headers, body)


def _options(request: httpx.Request) -> RequestOptions:
    # A body given as bytes can be sent again; a stream (generator, file) cannot.
    replayable = isinstance(request.stream, httpx.ByteStream)
    return RequestOptions(replayable=replayable)


def _on_event(event: Event, request: httpx.Request, response: Optional[httpx.Response]) -> Optional[httpx.Request]:
    """What the flow does with one event: the request to send (with its bearer token),
    ``None`` when it ends with the last response, or :class:`RequestFailed`.
    ``Fail { Unauthorized }`` hands the caller the refusal it got (rule 7.6/7.20)."""
    if event.kind == "send":
        request.headers["Authorization"] = f"Bearer {event.token}"
        return request
    if event.kind == "complete" or (event.reason == FailReason.UNAUTHORIZED and response is not None):
        return None
    raise RequestFailed(event.reason, request)


def _transient(retry_after_ms: Optional[int]) -> RefreshOutcome:
    return RefreshOutcome(failure=RefreshFailure.TRANSIENT(retry_after_ms=retry_after_ms))


def _retry_after_ms(headers: httpx.Headers) -> Optional[int]:
    """``Retry-After`` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value) * 1000
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0, int((when.timestamp() - time.time()) * 1000))


def _classify(status: int, headers: httpx.Headers, body: bytes) -> RefreshOutcome:
    import json

    try:
        payload = json.loads(body) if body else None
    except ValueError:
        payload = None
    if status == 200:
        if not isinstance(payload, dict) or not isinstance(payload.get("access_token"), str):
            log.warning("reauth: token response without an access_token; transient")
            return _transient(None)
        token_type = payload.get("token_type", "bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            log.warning("reauth: token response of type %r, not bearer; transient", token_type)
            return _transient(None)
        refresh = payload.get("refresh_token")
        expires_in = payload.get("expires_in")
        if refresh is not None and not isinstance(refresh, str):
            log.warning("reauth: token response with a non-string refresh_token; transient")
            return _transient(None)
        if expires_in is not None and (
            isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)) or expires_in < 0
        ):
            log.warning("reauth: token response with an invalid expires_in; transient")
            return _transient(None)
        return RefreshOutcome(
            credentials=Credentials(
                payload["access_token"],
                refresh_token=refresh,
                expires_in_ms=None if expires_in is None else int(expires_in * 1000),
            )
        )
    error = payload.get("error") if isinstance(payload, dict) else None
    if status in (400, 401) and isinstance(error, str):
        log.warning("reauth: token endpoint refused the refresh token (%s)", error)
        return RefreshOutcome(failure=RefreshFailure.REJECTED())
    log.warning("reauth: token endpoint answered %d; transient", status)
    return _transient(_retry_after_ms(headers))
