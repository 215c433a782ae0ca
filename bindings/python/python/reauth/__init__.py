"""reauth: access-token refresh done right — one refresh per expiry, every request
replayed or failed exactly once, never a logout on a network blip.

The coordinator is a sans-IO state machine written in Rust (``Coordinator``): inputs in,
commands out. Most apps use an adapter instead of driving it by hand:
``reauth.httpx.ReauthAuth`` for httpx. ``python -m reauth.replay FILE...`` replays
conformance transcripts. The behaviour is specified in ``docs/contract.md``.
"""

import logging as _logging

from . import _native

# uniffi 0.32's generated module defines the check of every exported function's checksum
# against the library it loaded but never calls it (its Kotlin and Swift code do): a
# library built from other code would be misread, not refused. It runs before any module
# calls into the library (74 calls, well under a millisecond).
_native.reauth_uniffi._uniffi_check_api_checksums(_native.reauth_uniffi._UniffiLib)

from ._driver import is_utf8 as _is_utf8
from ._native import (
    BearerError,
    Command,
    Config,
    Coordinator,
    FailCounts,
    FailReason,
    LogoutReason,
    ReauthError,
    RefreshFailure,
    RequestOptions,
    Stats,
    Submitted,
    TokenAnswer,
    TokenEndpoint,
    bearer_error,
    default_config,
    default_route,
    max_timestamp,
    read_token_response,
    route_key,
)
from .store import CredentialStore, FileStore, MemoryStore, StoredCredentials


def _check_utf8(what: str, text: object) -> None:
    # Raised outside any `except` block: the UnicodeEncodeError native code would raise
    # holds the whole token, and not even `__context__` may keep it.
    if isinstance(text, str) and not _is_utf8(text):
        raise ReauthError.InvalidCredentials(f"{what} is not valid UTF-8 (it holds a lone surrogate)")


class Credentials(_native.Credentials):
    """Credentials: ``Credentials(access_token, refresh_token=None, expires_in_ms=None)``.
    ``repr`` redacts the tokens. A token that is not valid UTF-8 (a lone surrogate)
    raises ``ReauthError.InvalidCredentials`` without its text."""

    def __init__(self, access_token: str, *args: object, **kwargs: object) -> None:
        _check_utf8("access token", access_token)
        _check_utf8("refresh token", kwargs.get("refresh_token", args[0] if args else None))
        super().__init__(access_token, *args, **kwargs)  # type: ignore[arg-type]


class Token(_native.Token):
    """A token whose ``repr`` is redacted; ``expose()`` gives its text."""

    def __init__(self, text: str) -> None:
        _check_utf8("token", text)
        super().__init__(text)


# A library logs, the app decides where to (no output unless it configures logging).
_logging.getLogger("reauth").addHandler(_logging.NullHandler())

__all__ = [
    "BearerError",
    "Command",
    "Config",
    "Coordinator",
    "CredentialStore",
    "Credentials",
    "FailCounts",
    "FailReason",
    "FileStore",
    "LogoutReason",
    "MemoryStore",
    "ReauthError",
    "RefreshFailure",
    "RequestOptions",
    "Stats",
    "StoredCredentials",
    "Submitted",
    "Token",
    "TokenAnswer",
    "TokenEndpoint",
    "bearer_error",
    "default_config",
    "default_route",
    "max_timestamp",
    "read_token_response",
    "route_key",
]
