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
which re-raises the transport error httpx raised. After :meth:`ReauthAuth.close`, waiting
and new requests raise :class:`ReauthClosed`.

Per request, in httpx's idiom (request extensions)::

    client.get("/public", extensions={"reauth": reauth.RequestOptions(refresh=False)})
    client.get("/users/7", extensions={"reauth": reauth.RequestOptions(route=reauth.route_key("GET /users/{id}"))})

Without a route, each request's route is its method, origin and path (contract §12.4), so
an endpoint that refuses a working token costs one refresh per token, not one per call;
a refusal with an RFC 6750 ``insufficient_scope`` challenge is handed back at once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import AsyncGenerator, Callable, Generator, List, Optional, Tuple

import httpx

from ._driver import DEFAULT_FLIGHT_RECORDER, Closed, Driver, Event, Recording
from ._native import (
    Config,
    Credentials,
    FailReason,
    LogoutReason,
    RequestOptions,
    Stats,
    Token,
    TokenAnswer,
    TokenEndpoint,
    default_route,
    max_token_response_bytes,
    read_token_response,
)
from .store import CredentialStore

__all__ = ["DEFAULT_FLIGHT_RECORDER", "ReauthAuth", "ReauthClosed", "Recording", "RequestFailed"]

log = logging.getLogger("reauth")

#: The request extension that carries a request's :class:`reauth.RequestOptions`.
EXTENSION = "reauth"


class RequestFailed(httpx.HTTPError):
    """The coordinator failed the request (``reason``: a :class:`reauth.FailReason`)."""

    def __init__(self, reason: FailReason, request: httpx.Request) -> None:
        super().__init__(f"request failed: {reason.name.lower()}")
        self.reason = reason
        self.request = request


class ReauthClosed(httpx.HTTPError):
    """:meth:`ReauthAuth.close` was called: the request was not sent, or its wait ended."""

    def __init__(self, request: httpx.Request) -> None:
        super().__init__("reauth is closed: the request was not sent")
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
        on_logout: Optional[Callable[..., None]] = None,
        token_client: Optional[httpx.Client] = None,
        token_timeout: float = 30.0,
        basic_auth: bool = False,
        flight_recorder: int = DEFAULT_FLIGHT_RECORDER,
    ) -> None:
        """``credentials`` start a session now (and are written to ``store`` once the
        coordinator accepted them: invalid ones raise and store nothing); without them
        the session is restored from ``store``, if it holds any. ``token_client`` is the
        client the refresh runs on (default: a new ``httpx.Client``; never pass the
        authenticated one). ``basic_auth`` sends the client secret with HTTP Basic
        instead of in the form (RFC 6749 §2.3.1). ``on_logout(reason)`` runs once per
        session end; a hook that takes two arguments gets ``(reason, recording)``, the
        flight recording of the coordinator's last ``flight_recorder`` inputs (0 turns
        the recorder off): ``recording.explain()`` says why the session ended. A session
        that ends for any reason but :meth:`logout` logs its recording at debug level."""
        self._endpoint = TokenEndpoint(token_url, client_id, client_secret, basic_auth)
        self._token_client = token_client or httpx.Client(timeout=token_timeout)
        deadline_ms = (config if config is not None else Config()).refresh_timeout_ms
        # One call may take at most the core's refresh deadline, body included: after it
        # the core has abandoned the attempt, and an endless body must not be read on.
        self._deadline = min(token_timeout, deadline_ms / 1000)
        self._driver = Driver(
            self._call_token_endpoint,
            config=config,
            credentials=credentials,
            store=store,
            on_logout=on_logout,
            flight_recorder=flight_recorder,
        )

    # ----- the app's controls ---------------------------------------------------------

    def login(self, credentials: Credentials) -> None:
        """Starts (or replaces) the session with credentials the app obtained. Refused
        credentials raise ``ReauthError.InvalidCredentials`` and change nothing, in the
        session or in the store."""
        self._driver.login(credentials)

    def recording(self) -> Recording:
        """The flight recording now: the coordinator's last inputs, the commands each
        produced and the rule behind each, tokens replaced."""
        return self._driver.recording()

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
        return self._driver.is_logged_in()

    def close(self) -> None:
        """Ends every request waiting for a token (they raise :class:`ReauthClosed`),
        makes later requests raise it at once, stops the timer thread and closes the
        token client. The session and the store are kept (this is not a logout)."""
        self._driver.close()
        self._token_client.close()

    # ----- httpx.Auth ---------------------------------------------------------------

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request_id, event = self._submit(request)
        response: Optional[httpx.Response] = None
        try:
            while True:
                if event is None:
                    event = self._driver.wait(request_id, None).wait()
                to_send = _on_event(event, request, response)
                if to_send is None:
                    return
                response = yield to_send
                event = self._driver.response(request_id, response.status_code, _challenges(response))
        except Closed:
            raise ReauthClosed(request) from None
        except BaseException:
            # httpx closed the flow at a `yield` (a transport error: rule 7.17), or the
            # caller gave up: the request ends here.
            self._driver.abandon(request_id)
            raise

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        request_id, event = self._submit(request)
        response: Optional[httpx.Response] = None
        try:
            while True:
                if event is None:
                    event = await self._driver.wait(request_id, asyncio.get_running_loop()).wait_async()
                to_send = _on_event(event, request, response)
                if to_send is None:
                    return
                response = yield to_send
                event = self._driver.response(request_id, response.status_code, _challenges(response))
        except Closed:
            raise ReauthClosed(request) from None
        except BaseException:
            self._driver.abandon(request_id)  # as in sync_auth_flow
            raise

    def _submit(self, request: httpx.Request) -> Tuple[int, Optional[Event]]:
        replayable, refresh, route = _options(request)
        try:
            return self._driver.submit(replayable, refresh, route)
        except Closed:
            raise ReauthClosed(request) from None

    # ----- the token endpoint: one call, read by the host layer ----------------------

    def _call_token_endpoint(self, refresh_token: Token) -> TokenAnswer:
        call = self._endpoint.refresh_request(refresh_token)
        headers = {h.name: h.value.expose() for h in call.headers}
        limit = max_token_response_bytes()
        deadline = time.monotonic() + self._deadline
        try:
            with self._token_client.stream(
                "POST", call.url, content=call.body.expose().encode(), headers=headers, timeout=self._deadline
            ) as response:
                body = bytearray()
                try:
                    for chunk in response.iter_bytes():
                        body += chunk[: limit + 1 - len(body)]
                        if len(body) > limit:
                            break  # too large: read no further
                        if time.monotonic() > deadline:
                            return _transient("token response still arriving at the refresh deadline")
                except httpx.HTTPError as e:
                    # The body broke off. A 200's bytes so far are still read: a rotation
                    # that arrived before the cut is kept (contract §12.3).
                    if response.status_code != 200:
                        return _transient(f"token response broke off ({e.__class__.__name__})")
                return read_token_response(
                    response.status_code,
                    response.headers.get("retry-after"),
                    bytes(body),
                    refresh_token,
                    int(time.time() * 1000),
                )
        except httpx.HTTPError as e:
            return _transient(f"token endpoint unreachable or broke off ({e.__class__.__name__})")


@functools.lru_cache(maxsize=1024)
def _route(method: str, scheme: str, host: str, port: Optional[int], path: str) -> int:
    """The default route (one native call per distinct endpoint, not per request)."""
    return default_route(method, scheme, host, port, path)


def _transient(problem: str) -> TokenAnswer:
    return TokenAnswer.TRANSIENT(retry_after_ms=None, problem=problem, rotated_refresh_token=None)


def _challenges(response: httpx.Response) -> List[str]:
    return response.headers.get_list("www-authenticate")


def _options(request: httpx.Request) -> Tuple[bool, bool, int]:
    """The request's options — replayable, refresh, route — from the caller's
    ``extensions["reauth"]`` or the defaults; the route is the caller's or the default one
    (method, origin, path — §12.4); a body given as a stream (generator, file) cannot be
    sent twice."""
    given = request.extensions.get(EXTENSION)
    if given is None:
        replayable, refresh, route = True, True, None
    elif isinstance(given, RequestOptions):
        replayable, refresh, route = given.replayable, given.refresh, given.route
    else:
        raise TypeError(f"extensions[{EXTENSION!r}] must be a reauth.RequestOptions, not {type(given).__name__}")
    if route is None:
        url = request.url
        path = url.raw_path.split(b"?", 1)[0].decode("ascii", "replace")
        route = _route(request.method, url.scheme, url.host, url.port, path)
    return replayable and isinstance(request.stream, httpx.ByteStream), refresh, route


def _on_event(event: Event, request: httpx.Request, response: Optional[httpx.Response]) -> Optional[httpx.Request]:
    """What the flow does with one event: the request to send (with its bearer token),
    ``None`` when it ends with the last response, or :class:`RequestFailed`.
    ``Fail { Unauthorized }`` hands the caller the refusal it got (rule 7.6/7.20), and so
    does an ``insufficient_scope`` refusal (§12.4)."""
    kind = event.kind
    if kind == "send":
        request.headers["Authorization"] = f"Bearer {event.token}"
        return request
    if kind == "complete" or kind == "callers_answer":
        return None
    if kind == "closed":
        raise ReauthClosed(request)
    if event.reason == FailReason.UNAUTHORIZED and response is not None:
        return None
    raise RequestFailed(event.reason, request)
