"""Replays conformance transcripts (``tests/vectors/*.json``) through the Python bindings.

    python -m reauth.replay tests/vectors/*.json

Exit status, as the Rust and Kotlin replayers: 0 every step matches, 1 a mismatch (each
one printed as expected versus actual), 2 a file that cannot be read or is not a
transcript. The format is described in ``tests/vectors/README.md``.

Transcripts are the one place where commands are written with their token text: they
hold test data only.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from ._native import (
    Command,
    Config,
    Coordinator,
    Credentials,
    FailReason,
    LogoutReason,
    ReauthError,
    RefreshFailure,
    RequestOptions,
)

__all__ = ["TranscriptError", "Mismatch", "replay", "command_record", "main"]


class TranscriptError(ValueError):
    """The file is not a valid transcript (unknown input type, missing field, bad config)."""


_I64_MAX = 2**63 - 1

_CONFIG_FIELDS = {
    "refresh_statuses",
    "expiry_skew_ms",
    "min_token_age_ms",
    "max_replays_per_request",
    "refresh_window",
    "initial_backoff_ms",
    "max_backoff_ms",
    "max_retries",
    "refresh_timeout_ms",
    "max_pending",
    "max_wait_ms",
}


def _config(raw: Dict[str, Any]) -> Config:
    unknown = set(raw) - _CONFIG_FIELDS
    if unknown:
        raise TranscriptError(f"unknown config field(s): {', '.join(sorted(unknown))}")
    fields = {k: v for k, v in raw.items() if k != "refresh_window"}
    window = raw.get("refresh_window")
    if window is not None:
        unknown = set(window) - {"max_refreshes", "window_ms"}
        if unknown:
            raise TranscriptError(f"unknown refresh_window field(s): {', '.join(sorted(unknown))}")
        if "max_refreshes" in window:
            fields["refresh_window_max_refreshes"] = window["max_refreshes"]
        if "window_ms" in window:
            fields["refresh_window_ms"] = window["window_ms"]
    return Config(**fields)


def _credentials(raw: Dict[str, Any]) -> Credentials:
    return Credentials(
        raw["access_token"],
        refresh_token=raw.get("refresh_token"),
        # Lifetimes cross as signed 64-bit integers; the core cuts any lifetime past the
        # end of the clock there anyway.
        expires_in_ms=None if raw.get("expires_in_ms") is None else min(raw["expires_in_ms"], _I64_MAX),
    )


def _failure(raw: Any) -> RefreshFailure:
    if raw == "rejected":
        return RefreshFailure.REJECTED()
    if isinstance(raw, dict) and set(raw) == {"transient"}:
        return RefreshFailure.TRANSIENT(retry_after_ms=(raw["transient"] or {}).get("retry_after_ms"))
    raise TranscriptError(f"unknown refresh failure {raw!r}")


_FAIL = {r: r.name.lower() for r in FailReason}
_LOGOUT = {r: r.name.lower() for r in LogoutReason}


def command_record(command: Command) -> Dict[str, Any]:
    """A command as a transcript writes it — with its token text (test data only)."""
    if command.is_send() or command.is_replay():
        return {
            "type": "send" if command.is_send() else "replay",
            "id": command.id,
            "access_token": command.access_token.expose(),
            "generation": command.generation,
        }
    if command.is_refresh():
        return {
            "type": "refresh",
            "attempt": command.attempt,
            "refresh_token": command.refresh_token.expose(),
        }
    if command.is_store_credentials():
        return {
            "type": "store_credentials",
            "generation": command.generation,
            "access_token": command.access_token.expose(),
            "refresh_token": command.refresh_token.expose() if command.refresh_token else None,
            "expires_in_ms": command.expires_in_ms,
            "expires_at": command.expires_at,
        }
    if command.is_complete():
        return {"type": "complete", "id": command.id}
    if command.is_fail():
        return {"type": "fail", "id": command.id, "reason": _FAIL[command.reason]}
    if command.is_logout():
        return {"type": "logout", "reason": _LOGOUT[command.reason]}
    raise TypeError(f"unknown command {command!r}")


def _apply(core: Coordinator, now: int, raw: Dict[str, Any]) -> tuple:
    """Applies one input; returns (request id or None, commands)."""
    kind = raw.get("type")
    if kind == "login":
        return None, core.login(now, _credentials(raw["credentials"]))
    if kind == "submit":
        options = raw.get("options") or {}
        submitted = core.submit(
            now,
            RequestOptions(
                replayable=options.get("replayable", True),
                refresh=options.get("refresh", True),
                route=options.get("route"),
            ),
        )
        return submitted.id, submitted.commands
    if kind == "response":
        return None, core.handle_response(now, raw["id"], raw["status"])
    if kind == "transport_error":
        return None, core.handle_transport_error(now, raw["id"])
    if kind == "refresh_succeeded":
        return None, core.handle_refresh_succeeded(now, raw["attempt"], _credentials(raw["credentials"]))
    if kind == "refresh_failed":
        return None, core.handle_refresh_failed(now, raw["attempt"], _failure(raw["failure"]))
    if kind == "timeout":
        return None, core.handle_timeout(now)
    if kind == "cancel":
        return None, core.cancel(now, raw["id"])
    if kind == "force_refresh":
        return None, core.force_refresh(now)
    if kind == "logout":
        return None, core.logout(now)
    if kind == "begin_restore":
        return None, core.begin_restore(now)
    if kind == "restore_failed":
        return None, core.restore_failed(now)
    raise TranscriptError(f"unknown input type {kind!r}")


def error_kind(error: ReauthError) -> str:
    """The transcript's snake_case name of an error (``"unknown_request"``, ...)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower()


@dataclass
class Mismatch:
    """A step whose outcome differs from the transcript."""

    step: int
    at: int
    input: str
    expected: Dict[str, Any]
    actual: Dict[str, Any]

    def __str__(self) -> str:
        lines = [f"  step {self.step} (at {self.at}, {self.input}):"]
        for key in ("commands", "error", "id", "timeout", "causes"):
            if self.expected.get(key) != self.actual.get(key):
                lines.append(f"    {key}: expected {json.dumps(self.expected.get(key))}")
                lines.append(f"    {' ' * len(key)}  actual   {json.dumps(self.actual.get(key))}")
        return "\n".join(lines)


def _with_defaults(record: Dict[str, Any]) -> Dict[str, Any]:
    """A transcript's command with its optional fields filled in (as the Rust reader does)."""
    if record.get("type") == "store_credentials":
        return {"expires_in_ms": None, "expires_at": None, **record}
    return record


_CAUSE = re.compile(r"7\.(?:[1-9]|1[0-9]|20)|answered|logged_in")

#: The recorder's capacity while a replay reads causes (only the last input's are read).
_RECORDED_WHILE_REPLAYING = 1024


def replay(transcript: Dict[str, Any]) -> List[Mismatch]:
    """Replays one parsed transcript from a new coordinator — or, for a flight recording
    that starts mid-session, from its ``start`` state — and returns the mismatches. The
    causes a recording gives for its commands are checked against the core's."""
    try:
        config = _config(transcript.get("config") or {})
        start = transcript.get("start")
        core = Coordinator(config) if start is None else Coordinator.resume(config, json.dumps(start))
    except ReauthError as e:
        raise TranscriptError(str(e)) from e
    steps = transcript["steps"]
    if not isinstance(steps, list) or not all(isinstance(step, dict) for step in steps):
        raise TranscriptError("steps must be a list of objects")
    for step in steps:
        causes = step.get("causes", [])
        if not isinstance(causes, list) or not all(isinstance(c, str) and _CAUSE.fullmatch(c) for c in causes):
            raise TranscriptError(f"unknown cause in {causes!r} (\"7.1\" to \"7.20\", \"answered\", \"logged_in\")")
    if any(step.get("causes") for step in steps):
        core.record(_RECORDED_WHILE_REPLAYING)
    mismatches = []
    for index, step in enumerate(steps, start=1):
        raw = step["input"]
        try:
            # Times cross as signed 64-bit integers: a transcript's `at` beyond that
            # (u64::MAX, say) is past the end of the clock either way.
            request_id, commands = _apply(core, min(step["at"], _I64_MAX), raw)
            error: Optional[str] = None
        except ReauthError as e:
            request_id, commands, error = None, [], error_kind(e)
        actual: Dict[str, Any] = {"commands": [command_record(c) for c in commands], "error": error}
        expected: Dict[str, Any] = {
            "commands": [_with_defaults(c) for c in step.get("expect", [])],
            "error": step.get("error"),
        }
        if "id" in step:
            expected["id"], actual["id"] = step["id"], request_id
        if "timeout" in step:
            expected["timeout"], actual["timeout"] = step["timeout"], core.poll_timeout()
        if step.get("causes"):
            expected["causes"], actual["causes"] = step["causes"], core.last_causes()
        if actual != expected:
            mismatches.append(Mismatch(index, step["at"], raw.get("type", "?"), expected, actual))
    return mismatches


def main(argv: Optional[Sequence[str]] = None) -> int:
    paths = list(sys.argv[1:] if argv is None else argv)
    if not paths or any(p in ("-h", "--help") for p in paths):
        print("usage: python -m reauth.replay TRANSCRIPT.json [TRANSCRIPT.json ...]", file=sys.stderr)
        return 2
    mismatched = False
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                transcript = json.load(f)
        except OSError as e:
            print(f"{path}: cannot read: {e}", file=sys.stderr)
            return 2
        except (ValueError, RecursionError) as e:
            print(f"{path}: not a valid transcript: {e}", file=sys.stderr)
            return 2
        try:
            if not isinstance(transcript, dict):
                raise TranscriptError("a transcript is a JSON object")
            mismatches = replay(transcript)
        except (TranscriptError, KeyError, TypeError, ValueError, AttributeError, OverflowError, RecursionError) as e:
            print(f"{path}: not a valid transcript: {e!r}", file=sys.stderr)
            return 2
        steps = len(transcript["steps"])
        if mismatches:
            mismatched = True
            print(f"MISMATCH {path}: {len(mismatches)} of {steps} steps differ")
            for m in mismatches:
                print(m)
        else:
            print(f"ok       {path} ({steps} steps)")
    print(f"{len(paths)} transcript(s): {'some differ' if mismatched else 'all match'}")
    return 1 if mismatched else 0


if __name__ == "__main__":
    sys.exit(main())
