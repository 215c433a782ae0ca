"""The host conformance table (tests/host-vectors/, format in its README), read through
the Python binding: every token-endpoint answer, challenge and route comes out as the
table says."""

from __future__ import annotations

import base64
import json

import pytest

import reauth
from conftest import ROOT

VECTORS = ROOT / "tests" / "host-vectors"
TOKENS = json.loads((VECTORS / "token-responses.json").read_text())


def body(case: dict) -> bytes:
    data = case["body"].encode() if "body" in case else base64.b64decode(case["body_base64"])
    return data.ljust(case.get("pad_to", 0), b" ")


def observed(answer) -> dict:
    if answer.is_succeeded():
        c = answer.credentials
        refresh = c.refresh_token()
        return {"outcome": "succeeded", "access_token": c.access_token().expose(),
                "refresh_token": refresh.expose() if refresh else None, "expires_in_ms": c.expires_in_ms()}
    if answer.is_rejected():
        return {"outcome": "rejected", "error": answer.error}
    rotated = answer.rotated_refresh_token
    # The binding carries the problem's text; the table's code is checked in Rust.
    assert answer.problem
    return {"outcome": "transient", "retry_after_ms": answer.retry_after_ms,
            "rotated_refresh_token": rotated.expose() if rotated else None}


@pytest.mark.parametrize("case", TOKENS["cases"], ids=lambda c: c["name"][:60])
def test_token_response(case):
    answer = reauth.read_token_response(case["status"], case.get("retry_after"), body(case),
                                        reauth.Token(TOKENS["sent_refresh_token"]), TOKENS["wall_now_ms"])
    expected = {k: v for k, v in case["expect"].items() if k != "problem"}
    assert observed(answer) == expected


def test_the_table_is_whole():
    assert len(TOKENS["cases"]) >= 45


@pytest.mark.parametrize("case", json.loads((VECTORS / "challenges.json").read_text())["cases"])
def test_challenge(case):
    error = reauth.bearer_error(case["www_authenticate"])
    assert (None if error is None else error.name.lower()) == case["bearer_error"]
    assert reauth._native.is_callers_answer(case["www_authenticate"]) == case["callers_answer"]


@pytest.mark.parametrize("case", json.loads((VECTORS / "routes.json").read_text())["cases"])
def test_route(case):
    key = reauth.default_route(case["method"], case["scheme"], case["host"], case["port"], case["path"])
    assert key == case["route_key"] == reauth.route_key(case["name"])
