"""Deterministic cost counts (issue 20): native calls per request in the steady state —
a session with a live token, no refresh — counted at the ctypes boundary, for the sync
and the async client. Each request is its submit and its response: two calls, whatever
the machine's speed."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc

import httpx
import pytest

import reauth
from reauth._native import reauth_uniffi as generated
from reauth.httpx import ReauthAuth


@contextlib.contextmanager
def counting():
    """Counts every call into the native library, by function name."""
    lib = generated._UniffiLib
    counts: collections.Counter = collections.Counter()
    names = [n for n in dir(lib) if n.startswith(("uniffi_", "ffi_"))]
    originals = {n: getattr(lib, n) for n in names}

    def wrap(name, fn):
        def counted(*args):
            counts[name] += 1
            return fn(*args)
        return counted

    # Objects of earlier tests freed by the garbage collector mid-count would be counted
    # (a driver's or a token endpoint's free): collect first, and not during the count.
    gc.collect()
    gc.disable()
    for name, fn in originals.items():
        setattr(lib, name, wrap(name, fn))
    try:
        yield counts
    finally:
        for name, fn in originals.items():
            setattr(lib, name, fn)
        gc.enable()


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, text="ok")


def auth() -> ReauthAuth:
    return ReauthAuth(
        "https://auth.test/token",
        "app",
        credentials=reauth.Credentials("at-1", refresh_token="rt-1", expires_in_ms=3_600_000),
        token_client=httpx.Client(transport=httpx.MockTransport(ok)),
    )


REQUESTS = 200


def test_a_steady_state_request_is_two_native_calls_sync():
    a = auth()
    with httpx.Client(auth=a, transport=httpx.MockTransport(ok)) as client:
        for _ in range(10):  # warm: the route cached (one call per endpoint), the token held
            client.get("https://api.test/items")
        with counting() as counts:
            for i in range(REQUESTS):
                assert client.get(f"https://api.test/items?page={i}").status_code == 200
    a.close()
    total = sum(counts.values())
    print(f"native calls per request (sync): {total / REQUESTS:.2f} {dict(counts)}")
    assert total == 2 * REQUESTS, dict(counts)
    assert set(counts) == {"uniffi_reauth_uniffi_fn_func_driver_submit",
                           "uniffi_reauth_uniffi_fn_func_driver_response"}, dict(counts)


def test_a_steady_state_request_is_two_native_calls_async():
    a = auth()

    async def run():
        async with httpx.AsyncClient(auth=a, transport=httpx.MockTransport(ok)) as client:
            for i in range(7):  # warm: each route cached, the token held
                await client.get(f"https://api.test/items/{i}")
            with counting() as counts:
                await asyncio.gather(*(client.get(f"https://api.test/items/{i % 7}") for i in range(REQUESTS)))
            return counts

    counts = asyncio.run(run())
    a.close()
    total = sum(counts.values())
    print(f"native calls per request (async, {REQUESTS} at once): {total / REQUESTS:.2f}")
    assert total == 2 * REQUESTS, dict(counts)


def test_the_count_sees_a_refresh():
    # The counter is no constant: a request that meets a refresh costs more calls.
    calls = []

    def token(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(200, json={"access_token": "at-2", "token_type": "Bearer", "expires_in": 3600})

    a = ReauthAuth(
        "https://auth.test/token",
        "app",
        credentials=reauth.Credentials("at-1", refresh_token="rt-1", expires_in_ms=3_600_000),
        token_client=httpx.Client(transport=httpx.MockTransport(token)),
    )
    with httpx.Client(auth=a, transport=httpx.MockTransport(ok)) as client:
        client.get("https://api.test/me")
        a.force_refresh()
        with counting() as counts:
            assert client.get("https://api.test/me").status_code == 200
    a.close()
    assert calls and sum(counts.values()) > 2, dict(counts)


if __name__ == "__main__":
    pytest.main([__file__, "-q", "-s"])
