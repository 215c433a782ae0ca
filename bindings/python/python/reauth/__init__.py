"""reauth: access-token refresh done right — one refresh per expiry, every request
replayed or failed exactly once, never a logout on a network blip.

The coordinator is a sans-IO state machine written in Rust (``Coordinator``): inputs in,
commands out. Most apps use an adapter instead of driving it by hand:
``reauth.httpx.ReauthAuth`` for httpx. ``python -m reauth.replay FILE...`` replays
conformance transcripts. The behaviour is specified in ``docs/contract.md``.
"""

import logging as _logging

from ._native import (
    Command,
    Config,
    Coordinator,
    Credentials,
    FailCounts,
    FailReason,
    LogoutReason,
    ReauthError,
    RefreshFailure,
    RequestOptions,
    Stats,
    Submitted,
    Token,
    default_config,
    max_timestamp,
    route_key,
)
from .store import CredentialStore, FileStore, MemoryStore, StoredCredentials

# A library logs, the app decides where to (no output unless it configures logging).
_logging.getLogger("reauth").addHandler(_logging.NullHandler())

__all__ = [
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
    "default_config",
    "max_timestamp",
    "route_key",
]
