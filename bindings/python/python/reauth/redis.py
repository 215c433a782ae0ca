"""Credentials of many grants in Redis, shared by a fleet of workers.

::

    import redis
    from reauth.redis import RedisStore, client_options

    r = redis.Redis.from_url("redis://cache:6379/0", **client_options())
    auth = ReauthAuth(token_url, client_id, store=RedisStore(r, "customer-42"))

One hash per grant (``reauth:cred:{grant}``: the tokens, the wall-clock expiry and a
version) and one lock key (``reauth:lock:{grant}``), taken with ``SET NX PX`` and a
random fencing value (the holder's process id, then a UUID) by redis-py's :class:`redis.lock.Lock` — released only by its
holder, and expiring on its own ``lock_ttl`` seconds after a holder died or was cut off.
A save under the lock is a script that writes only if the hash's version is still the one
the lock's load read, so a worker whose lock expired cannot overwrite a newer rotation.

Redis must keep what it acknowledged across a restart (``appendonly yes`` with
``appendfsync always``): a restart that forgets a rotation loses the grant on a server
with reuse detection. Needs ``pip install 'reauth[redis]'``.
"""

from __future__ import annotations

import os
import uuid
from typing import Any, Dict, Optional

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError, LockNotOwnedError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._shared import (
    DEFAULT_LOCK_TTL,
    DEFAULT_LOCK_WAIT,
    LockTimeout,
    SharedStore,
    StaleWrite,
    StoreUnavailable,
    finite_or_none,
)
from .store import StoredCredentials

__all__ = ["RedisStore", "client_options", "StoreUnavailable", "LockTimeout", "StaleWrite"]

PREFIX = "reauth:"

# KEYS[1] the grant's hash; ARGV: expected version ("" for any), then "set" with access,
# refresh ("" for none, flagged by ARGV[5]), expires_at ("" for none) — or "clear".
# Returns the new version, or -1 if the version was not the expected one.
_WRITE = """
local v = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if v == nil or v < 0 or v ~= math.floor(v) or v >= 2^53 then
  return redis.error_reply('reauth: the version field is not a count')
end
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= v then return -1 end
redis.call('DEL', KEYS[1])
if ARGV[2] == 'set' then
  redis.call('HSET', KEYS[1], 'access_token', ARGV[3])
  if ARGV[5] == '1' then redis.call('HSET', KEYS[1], 'refresh_token', ARGV[4]) end
  if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'expires_at', ARGV[6]) end
end
redis.call('HSET', KEYS[1], 'version', v + 1)
return v + 1
"""

_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError)


def client_options(timeout: float = 5.0) -> Dict[str, Any]:
    """Client settings that turn an unreachable or silent Redis into an error within
    ``timeout`` seconds instead of a hang, retrying nothing on their own (the store
    decides what a retry may do)."""
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "socket_keepalive": True,
        "health_check_interval": 10,
        "retry_on_timeout": False,
    }


def _unavailable(e: BaseException, grant: str) -> StoreUnavailable:
    return StoreUnavailable(f"grant {grant!r}: Redis unavailable ({type(e).__name__})")


class RedisStore(SharedStore):
    """One grant's credentials in Redis; ``repr`` names the grant, never the tokens.
    ``client`` is a :class:`redis.Redis` (its connection pool shared by every grant)."""

    def __init__(
        self,
        client: redis.Redis,
        grant_id: str,
        *,
        prefix: str = PREFIX,
        lock_wait: float = DEFAULT_LOCK_WAIT,
        lock_ttl: float = DEFAULT_LOCK_TTL,
    ) -> None:
        super().__init__(grant_id, lock_wait, lock_ttl)
        if not isinstance(client, redis.Redis):
            raise TypeError(f"client must be a redis.Redis, not {type(client).__name__}")
        if client.get_connection_kwargs().get("decode_responses"):
            raise ValueError("the redis client must not decode responses (decode_responses=False)")
        self._client = client
        self._key = f"{prefix}cred:{grant_id}"
        self._write_script = client.register_script(_WRITE)
        self._fleet_lock = client.lock(
            f"{prefix}lock:{grant_id}",
            timeout=self.lock_ttl,
            sleep=0.005,
            blocking_timeout=self.lock_wait,
            thread_local=False,
        )

    def __repr__(self) -> str:
        return f"RedisStore(grant_id={self.grant_id!r})"

    def _acquire(self) -> None:
        try:
            # The holder's process id first: who holds a grant is readable in Redis.
            taken = self._fleet_lock.acquire(token=f"{os.getpid()}-{uuid.uuid4().hex}")
        except _UNAVAILABLE as e:
            raise _unavailable(e, self.grant_id) from None
        except LockError as e:  # pragma: no cover - redis-py's own misuse checks
            raise StoreUnavailable(f"grant {self.grant_id!r}: Redis lock failed ({e})") from None
        if not taken:
            raise LockTimeout(f"grant {self.grant_id!r}: another worker held the lock for over {self.lock_wait} s")

    def _release(self) -> None:
        try:
            self._fleet_lock.release()
        except LockNotOwnedError:
            # Expired while held (and maybe taken by another worker): not ours to delete.
            pass
        except (LockError, *_UNAVAILABLE):
            pass  # it expires on its own

    def _read(self, locked: bool):
        try:
            fields = self._client.hgetall(self._key)
        except _UNAVAILABLE as e:
            raise _unavailable(e, self.grant_id) from None
        raw_version = fields.get(b"version", b"0")
        if not raw_version.isdigit():
            raise ValueError(f"{self._key}: the version field is not a count")
        version = int(raw_version)
        access = fields.get(b"access_token")
        if access is None:
            return None, version
        try:
            access_s = access.decode("utf-8")
            refresh = fields.get(b"refresh_token")
            refresh_s = None if refresh is None else refresh.decode("utf-8")
            expires = fields.get(b"expires_at")
            expires_at = None if expires is None else finite_or_none(float(expires), "expires_at")
        except (UnicodeDecodeError, ValueError):
            raise ValueError(f"{self._key}: not a reauth credentials hash") from None
        if not access_s:
            raise ValueError(f"{self._key}: access_token must be a non-empty string")
        return StoredCredentials(access_s, refresh_s, expires_at), version

    def _write(
        self, credentials: Optional[StoredCredentials], expect: Optional[int], locked: bool, fresh: bool = False
    ) -> Optional[int]:
        if credentials is None:
            args = ["" if expect is None else str(expect), "clear", "", "", "0", ""]
        else:
            expires = finite_or_none(credentials.expires_at, "expires_at")
            args = [
                "" if expect is None else str(expect),
                "set",
                credentials.access_token,
                credentials.refresh_token or "",
                "0" if credentials.refresh_token is None else "1",
                "" if expires is None else repr(expires),
            ]
        try:
            written = int(self._write_script(keys=[self._key], args=args))
        except _UNAVAILABLE as e:
            raise _unavailable(e, self.grant_id) from None
        except ResponseError as e:
            if "reauth:" in str(e):  # the script's own refusal of a corrupted hash
                raise ValueError(f"{self._key}: the version field is not a count") from None
            raise
        return None if written < 0 else written
