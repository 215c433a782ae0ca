"""The host layer's failures, each as it was found (issue 19), through the httpx adapter:
a refused login leaves the store alone, ``close()`` ends every wait, a malformed 200 that
rotated keeps the rotation, an endless token body is cut off, ``insufficient_scope``
never refreshes, and a refusing endpoint costs one refresh per token with default
routes. Mock transports stand in for answers no real server gives on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from urllib.parse import parse_qs

import httpx
import pytest

import reauth
from conftest import TokenServer, credentials_from
from reauth.httpx import ReauthAuth, ReauthClosed


class Endpoint:
    """A scripted token endpoint (answers in order, the last repeats) and an API that
    accepts any token. Records the refresh tokens presented."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.presented = []
        self.calls = 0

    def token(self, request: httpx.Request) -> httpx.Response:
        self.presented.append(parse_qs(request.read().decode())["refresh_token"][0])
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return answer() if callable(answer) else answer

    @staticmethod
    def api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="ok")


def auth_for(endpoint: Endpoint, store, **kwargs) -> ReauthAuth:
    return ReauthAuth(
        "https://auth.test/token",
        "app",
        store=store,
        token_client=httpx.Client(transport=httpx.MockTransport(endpoint.token)),
        config=reauth.Config(initial_backoff_ms=10, max_backoff_ms=50, refresh_timeout_ms=2_000, **kwargs),
    )


def stored(access="at-1", refresh="rt-1"):
    return reauth.StoredCredentials(access, refresh, None)


def test_a_refused_login_changes_nothing_in_the_store(tmp_path):
    store = reauth.FileStore(tmp_path / "credentials.json")
    store.save(stored("at-1", "rt-good"))
    auth = auth_for(Endpoint(httpx.Response(500)), store)
    for bad in ["tok\r\nX: 1", "tok en", ""]:
        with pytest.raises(reauth.ReauthError.InvalidCredentials):
            auth.login(reauth.Credentials(bad, refresh_token="new-rt"))
        assert store.load().refresh_token == "rt-good", bad
    assert auth.is_logged_in
    auth.close()
    # Built with invalid credentials: refused, nothing written, no thread left behind.
    empty = reauth.FileStore(tmp_path / "other.json")
    threads = threading.active_count()
    with pytest.raises(reauth.ReauthError.InvalidCredentials):
        ReauthAuth("https://auth.test/token", "app", store=empty,
                   credentials=reauth.Credentials("a\nb", refresh_token="rt"))
    assert empty.load() is None
    assert threading.active_count() <= threads


def test_a_malformed_200_that_rotated_keeps_the_rotation(caplog):
    # The first answer rotates rt-1 to rt-2 but its access token is unusable; the retry
    # must present rt-2 (rt-1 again would be a reuse: the family would be revoked). The
    # unusable answer is reported at once, with a log line — not swallowed until the
    # refresh deadline (2 s here).
    caplog.set_level("WARNING", logger="reauth")
    started = time.monotonic()
    endpoint = Endpoint(
        httpx.Response(200, json={"access_token": "bad token", "token_type": "Bearer", "refresh_token": "rt-2"}),
        httpx.Response(200, json={"access_token": "at-3", "token_type": "Bearer", "expires_in": 60, "refresh_token": "rt-3"}),
    )
    store = reauth.MemoryStore(stored())
    auth = auth_for(endpoint, store)
    auth.force_refresh()
    with httpx.Client(auth=auth, transport=httpx.MockTransport(Endpoint.api)) as client:
        assert client.get("https://api.test/me").status_code == 200
    assert endpoint.presented == ["rt-1", "rt-2"]
    assert store.load().refresh_token == "rt-3"
    assert time.monotonic() - started < 1.5, "reported at once, not at the refresh deadline"
    problems = [r.getMessage() for r in caplog.records if "unusable access_token" in r.getMessage()]
    assert problems, [r.getMessage() for r in caplog.records]
    assert not any("rt-2" in r.getMessage() or "bad token" in r.getMessage() for r in caplog.records)
    auth.close()


class SiblingStore(reauth.MemoryStore):
    """A store shared with a sibling process that rotates the instant the refresh lock is
    released (the sibling then holds the lock, refreshes rt-2 to rt-sibling, stores it)."""

    def __init__(self, credentials) -> None:
        super().__init__(credentials)
        self.rotations = 0

    @contextlib.contextmanager
    def lock(self):
        with super().lock():
            yield
        if self.rotations == 0 and self.load().refresh_token == "rt-2":
            self.rotations += 1
            self.save(reauth.StoredCredentials("at-sibling", "rt-sibling", time.time() + 60))


def test_a_sibling_rotation_right_after_the_lock_is_never_overwritten():
    # §12.2: the refresh result is stored under the lock; the StoreCredentials that follows
    # is not written again, or it would put the spent rt-2 back over the sibling's
    # rt-sibling — and the next refresh would present rt-2: a reuse.
    endpoint = Endpoint(
        httpx.Response(200, json={"access_token": "at-2", "token_type": "Bearer", "expires_in": 60, "refresh_token": "rt-2"}),
    )
    store = SiblingStore(stored())
    auth = auth_for(endpoint, store)
    auth.force_refresh()
    with httpx.Client(auth=auth, transport=httpx.MockTransport(Endpoint.api)) as client:
        assert client.get("https://api.test/me").status_code == 200
    assert store.rotations == 1 and endpoint.presented == ["rt-1"]
    assert store.load().refresh_token == "rt-sibling"
    # The next refresh adopts the sibling's credentials instead of presenting rt-2.
    auth.force_refresh()
    with httpx.Client(auth=auth, transport=httpx.MockTransport(Endpoint.api)) as client:
        assert client.get("https://api.test/me").status_code == 200
    assert endpoint.presented == ["rt-1"], "rt-2 presented again"
    auth.close()


@pytest.mark.parametrize("lifetime", ["NaN", "1e400", '"soon"', "-5"])
def test_an_unusable_lifetime_keeps_the_answer(lifetime):
    body = '{"access_token":"at-2","expires_in":%s,"refresh_token":"rt-2"}' % lifetime
    endpoint = Endpoint(httpx.Response(200, content=body.encode(), headers={"content-type": "application/json"}))
    store = reauth.MemoryStore(stored())
    auth = auth_for(endpoint, store)
    auth.force_refresh()
    with httpx.Client(auth=auth, transport=httpx.MockTransport(Endpoint.api)) as client:
        assert client.get("https://api.test/me").status_code == 200
    assert store.load().refresh_token == "rt-2" and endpoint.calls == 1
    auth.close()


def test_an_endless_token_response_is_cut_off():
    produced = [0]

    def endless():
        while True:
            produced[0] += 1
            yield b"x" * 65536

    endpoint = Endpoint(lambda: httpx.Response(200, content=endless()))
    auth = auth_for(endpoint, reauth.MemoryStore(stored()), max_retries=0)
    auth.force_refresh()
    started = time.monotonic()
    with httpx.Client(auth=auth, transport=httpx.MockTransport(Endpoint.api)) as client:
        with pytest.raises(reauth.httpx.RequestFailed) as caught:
            client.get("https://api.test/me")
    assert caught.value.reason == reauth.FailReason.REFRESH_UNAVAILABLE
    assert time.monotonic() - started < 10
    # Read up to the limit (256 KiB), then stopped: not the 637 MiB of before.
    assert produced[0] * 65536 <= reauth._native.max_token_response_bytes() + 2 * 65536
    auth.close()


def test_close_ends_every_wait_sync_and_async():
    release = threading.Event()

    def silent():
        release.wait(30)  # a token endpoint that does not answer
        return httpx.Response(503)

    auth = auth_for(Endpoint(silent), reauth.MemoryStore(stored()))
    auth.force_refresh()
    outcomes = []

    def call():
        with httpx.Client(auth=auth, transport=httpx.MockTransport(Endpoint.api)) as client:
            try:
                client.get("https://api.test/me")
                outcomes.append("answered")
            except ReauthClosed:
                outcomes.append("closed")

    async def call_async():
        async with httpx.AsyncClient(auth=auth, transport=httpx.MockTransport(Endpoint.api)) as client:
            with pytest.raises(ReauthClosed):
                await client.get("https://api.test/me")
        outcomes.append("closed")

    threads = [threading.Thread(target=call) for _ in range(3)]
    threads.append(threading.Thread(target=lambda: asyncio.run(call_async())))
    for t in threads:
        t.start()
    while auth.stats().submitted < 4:
        time.sleep(0.005)
    auth.close()
    for t in threads:
        t.join(5)
        assert not t.is_alive(), "a call stayed blocked after close()"
    assert outcomes == ["closed"] * 4
    started = time.monotonic()
    with httpx.Client(auth=auth, transport=httpx.MockTransport(Endpoint.api)) as client:
        with pytest.raises(ReauthClosed):
            client.get("https://api.test/me")
    assert time.monotonic() - started < 1
    assert auth.stats().submitted == 4, "nothing submitted after close()"
    release.set()


def test_insufficient_scope_is_the_callers_answer_and_never_refreshes(token_server: TokenServer):
    auth = ReauthAuth(token_server.token_url, "app", credentials=credentials_from(token_server.login()),
                      config=reauth.Config(refresh_statuses=[401, 403]))
    with httpx.Client(auth=auth, base_url=token_server.url) as client:
        for i in range(20):
            assert client.get(f"/api/scoped/{i}").status_code == 403
            assert client.get("/api/me").status_code == 200
    server = token_server.stats()
    assert (server["scope_refusals"], server["served"], server["refresh_calls"]) == (20, 20, 0)
    assert auth.stats().refresh_cycles == 0 and auth.is_logged_in
    auth.close()


def test_a_refusing_endpoint_costs_one_refresh_per_token_and_no_logout(token_server: TokenServer):
    """Rule 20 through default routes: an endpoint that refuses every token with a bare
    403 (a refresh status here), called every 100 ms beside normal traffic with 1.5 s
    tokens (the server states ``expires_in: 1``) for 6 s: each call gets its 403, no
    logout, at most one extra refresh per token — never one per call."""
    logouts = []
    auth = ReauthAuth(token_server.token_url, "app", credentials=credentials_from(token_server.login()),
                      config=reauth.Config(refresh_statuses=[401, 403]), on_logout=logouts.append)
    end = time.monotonic() + 6
    ok = [0]

    def normal():
        with httpx.Client(auth=auth, base_url=token_server.url) as client:
            while time.monotonic() < end:
                assert client.get("/api/me").status_code == 200
                ok[0] += 1
                time.sleep(0.02)

    worker = threading.Thread(target=normal)
    worker.start()
    refused = 0
    with httpx.Client(auth=auth, base_url=token_server.url) as client:
        while time.monotonic() < end:
            assert client.get("/api/forbidden/admin").status_code == 403
            refused += 1
            time.sleep(0.1)
    worker.join()
    stats = auth.stats()
    print(f"refusing endpoint: {refused} refused, {ok[0]} ok, {stats.refresh_cycles} refresh cycles")
    assert refused >= 40 and ok[0] >= 100
    assert logouts == []
    assert stats.failed.unauthorized == refused
    assert stats.refresh_cycles <= 2 * 13 and stats.refresh_cycles * 2 < refused, stats.refresh_cycles
    auth.close()


def test_per_request_options_ride_in_the_extensions(token_server: TokenServer):
    auth = ReauthAuth(token_server.token_url, "app", credentials=credentials_from(token_server.login()),
                      config=reauth.Config(refresh_statuses=[401, 403]))
    with httpx.Client(auth=auth, base_url=token_server.url) as client:
        r = client.get("/api/forbidden/x", extensions={"reauth": reauth.RequestOptions(refresh=False)})
        assert r.status_code == 403
        with pytest.raises(TypeError):
            client.get("/api/me", extensions={"reauth": {"refresh": False}})
    assert (auth.stats().refresh_cycles, token_server.stats()["refresh_calls"]) == (0, 0)
    auth.close()


def test_a_200_that_breaks_off_after_its_rotation_keeps_it():
    def cut_short():
        yield b'{"token_type":"Bearer","refresh_token":"rt-2","access_token":"at-'
        raise httpx.ReadError("connection reset")

    endpoint = Endpoint(
        lambda: httpx.Response(200, stream=_Stream(cut_short())),
        httpx.Response(200, json={"access_token": "at-3", "token_type": "Bearer", "refresh_token": "rt-3"}),
    )
    store = reauth.MemoryStore(stored())
    auth = auth_for(endpoint, store)
    auth.force_refresh()
    with httpx.Client(auth=auth, transport=httpx.MockTransport(Endpoint.api)) as client:
        assert client.get("https://api.test/me").status_code == 200
    assert endpoint.presented == ["rt-1", "rt-2"], "the retry presents the rotation that arrived before the cut"
    assert store.load().refresh_token == "rt-3"
    auth.close()


class _Stream(httpx.SyncByteStream):
    def __init__(self, chunks) -> None:
        self._chunks = chunks

    def __iter__(self):
        yield from self._chunks


def test_a_request_on_the_wire_at_close_raises_reauth_closed():
    on_the_wire, release = threading.Event(), threading.Event()

    def slow_api(request: httpx.Request) -> httpx.Response:
        on_the_wire.set()
        release.wait(10)
        return httpx.Response(200, text="ok")

    auth = auth_for(Endpoint(httpx.Response(503)), reauth.MemoryStore(stored()))
    outcome = []

    def call():
        with httpx.Client(auth=auth, transport=httpx.MockTransport(slow_api)) as client:
            try:
                client.get("https://api.test/me")
                outcome.append("answered")
            except ReauthClosed:
                outcome.append("closed")

    t = threading.Thread(target=call)
    t.start()
    assert on_the_wire.wait(5)
    auth.close()
    release.set()
    t.join(5)
    assert outcome == ["closed"]


class HeldStore(reauth.MemoryStore):
    """A store whose save blocks until the test releases it (a slow disk, a keychain
    prompt)."""

    def __init__(self, credentials=None) -> None:
        super().__init__(credentials)
        self.saving = threading.Event()
        self.release = threading.Event()

    def save(self, credentials) -> None:
        self.saving.set()
        assert self.release.wait(30)
        super().save(credentials)


def completes_while(blocked: threading.Event, work) -> None:
    """Runs `work` on a thread while `blocked` holds something up; it must finish first."""
    done = threading.Thread(target=work)
    done.start()
    done.join(10)
    assert not done.is_alive(), "requests waited for what was held up"
    assert not blocked.is_set(), "held up throughout"


def test_no_lock_is_held_across_the_store_or_the_logout_hook():
    # Issue 20: a save that blocks (a login on one thread) and an on_logout hook that
    # blocks hold up no other request — they complete while those are still held.
    store = HeldStore(stored("at-1", "rt-1"))
    hook_running, hook_release = threading.Event(), threading.Event()

    def on_logout(reason):
        hook_running.set()
        assert hook_release.wait(30)

    auth = ReauthAuth(
        "https://auth.test/token", "app", store=store, on_logout=on_logout,
        token_client=httpx.Client(transport=httpx.MockTransport(Endpoint.api)),
    )
    with httpx.Client(auth=auth, transport=httpx.MockTransport(Endpoint.api)) as client:
        login = threading.Thread(target=auth.login, args=(reauth.Credentials("at-2", refresh_token="rt-2"),))
        login.start()
        assert store.saving.wait(10)

        def requests():
            for _ in range(20):
                assert client.get("https://api.test/me").status_code == 200

        completes_while(store.release, requests)
        store.release.set()
        login.join(10)
        logout = threading.Thread(target=auth.logout)
        logout.start()
        assert hook_running.wait(10)

        def refused():
            with pytest.raises(reauth.httpx.RequestFailed) as caught:
                client.get("https://api.test/me")
            assert caught.value.reason == reauth.FailReason.NOT_LOGGED_IN

        completes_while(hook_release, refused)
        hook_release.set()
        logout.join(10)
    auth.close()


def test_a_wake_carried_out_after_its_request_was_abandoned_is_not_kept():
    # A logout's wakes are carried out after the app's hook; a caller that gives up while
    # the hook runs abandons its request first. Its wake must not stay behind, holding
    # nothing for nobody (a Send's would hold token text).
    in_hook, release, token_call = threading.Event(), threading.Event(), threading.Event()

    def on_logout(reason):
        in_hook.set()
        assert release.wait(10)

    def slow_token():
        token_call.wait(10)
        return httpx.Response(500)

    class Unlocked(reauth.MemoryStore):  # the refresh holds no lock the logout's clear needs
        def lock(self):
            return contextlib.nullcontext()

    endpoint = Endpoint(slow_token)
    auth = auth_for(endpoint, Unlocked(stored()))
    driver = auth._driver
    driver._on_logout = on_logout
    auth.force_refresh()
    request_id, event = driver.submit(True, True, 0)
    assert event is None, "it waits for the refresh"
    logout = threading.Thread(target=auth.logout)
    logout.start()
    assert in_hook.wait(10)
    driver.abandon(request_id)
    release.set()
    logout.join(10)
    assert request_id not in driver._early
    token_call.set()
    auth.close()
