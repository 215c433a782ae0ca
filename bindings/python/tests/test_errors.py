"""Bad input gets an exception of a documented class with a clear message, and changes
nothing; secrets never appear in a repr, a str or an error."""

import pytest

import reauth
from reauth import ReauthError

SECRET_AT = "at-SECRET-0123456789"
SECRET_RT = "rt-SECRET-9876543210"


def snapshot(core):
    return (core.stats(), core.poll_timeout(), core.is_logged_in(), core.generation(), core.open_requests(), core.waiting())


@pytest.fixture
def core():
    c = reauth.Coordinator(reauth.Config(max_retries=1))
    c.login(0, reauth.Credentials(SECRET_AT, refresh_token=SECRET_RT))
    sent = c.submit(1)
    c.handle_response(2, sent.id, 401)  # a refresh runs (attempt 1); request 1 waits
    c.submit(3)  # request 2 waits too
    return c


BAD_INPUTS = [
    (lambda c: c.handle_response(10, 99, 200), ReauthError.UnknownRequest, "unknown request 99"),
    (lambda c: c.handle_response(10, 1, 200), ReauthError.NotInFlight, "request 1 is not awaiting a response"),
    (lambda c: c.handle_response(10, 1, 600), ReauthError.InvalidStatus, "invalid http status 600"),
    (lambda c: c.handle_response(10, 1, 99), ReauthError.InvalidStatus, "invalid http status 99"),
    (lambda c: c.handle_transport_error(10, 99), ReauthError.UnknownRequest, "unknown request 99"),
    (lambda c: c.cancel(10, 99), ReauthError.UnknownRequest, "unknown request 99"),
    (lambda c: c.handle_refresh_succeeded(10, 7, reauth.Credentials("at-2")), ReauthError.UnknownAttempt, "unknown refresh attempt 7"),
    (lambda c: c.handle_refresh_failed(10, 0, reauth.RefreshFailure.REJECTED()), ReauthError.UnknownAttempt, "unknown refresh attempt 0"),
    (lambda c: c.handle_refresh_succeeded(10, 1, reauth.Credentials("")), ReauthError.InvalidCredentials, "access token is empty"),
    (lambda c: c.handle_refresh_succeeded(10, 1, reauth.Credentials("a b")), ReauthError.InvalidCredentials, "whitespace"),
    (lambda c: c.login(10, reauth.Credentials("at", refresh_token=" ")), ReauthError.InvalidCredentials, "refresh token"),
    (lambda c: c.login(10, reauth.Credentials("x" * 70000)), ReauthError.InvalidCredentials, "invalid credentials"),
    (lambda c: c.handle_timeout(reauth.max_timestamp() + 1), ReauthError.InvalidTime, "past the end of the clock"),
    (lambda c: c.submit(10, reauth.RequestOptions(route=0)), ReauthError.InvalidRoute, "route keys are in"),
    (lambda c: c.handle_response(10, 1, 70000), ReauthError.InvalidStatus, "invalid http status 70000"),
    (lambda c: c.handle_timeout(-1), ReauthError.InvalidTime, "time -1 is past the end of the clock"),
    (lambda c: c.cancel(10, -3), ReauthError.UnknownRequest, "unknown request -3"),
    (lambda c: c.handle_refresh_failed(10, 1, reauth.RefreshFailure.TRANSIENT(retry_after_ms=-5)), ReauthError.InvalidArgument, "retry_after_ms must not be negative"),
    (lambda c: c.submit(10, reauth.RequestOptions(route=2**32)), ReauthError.InvalidRoute, "route keys are in"),
    # Values outside the 64-bit range, and wrong types, are refused by the binding itself.
    (lambda c: c.handle_timeout(2**63), ValueError, "i64"),
    (lambda c: c.handle_response(10, "1", 200), TypeError, ""),
    # A lone surrogate: refused like any invalid token, without the token's text.
    (lambda c: c.login(10, reauth.Credentials("at-\udc80")), ReauthError.InvalidCredentials, "lone surrogate"),
    (lambda c: c.login(10, reauth.Credentials("at", refresh_token="rt-\ud800")), ReauthError.InvalidCredentials, "refresh token"),
]


def _chain(e: BaseException):
    """An exception, its cause and context, and theirs."""
    seen = []
    while e is not None and e not in seen:
        seen.append(e)
        e = e.__cause__ or e.__context__
    return seen


@pytest.mark.parametrize("access, refresh", [("tok-\udc80-SECRET", None), ("tok", "SECRET-\ud800-rt")])
def test_a_lone_surrogate_never_carries_the_token_into_the_exception(access, refresh):
    with pytest.raises(ReauthError.InvalidCredentials) as caught:
        reauth.Credentials(access, refresh_token=refresh)
    for e in _chain(caught.value):
        assert "SECRET" not in repr(e) and "SECRET" not in str(e.args), repr(e)
        assert not isinstance(e, UnicodeError), "no UnicodeEncodeError with the token in .object"
    with pytest.raises(ReauthError.InvalidCredentials):
        reauth.Token("SECRET-\udc80")


@pytest.mark.parametrize("bad, error, message", BAD_INPUTS, ids=lambda x: getattr(x, "__name__", None))
def test_bad_input_is_refused_and_changes_nothing(core, bad, error, message):
    before = snapshot(core)
    with pytest.raises(error) as caught:
        bad(core)
    assert message in str(caught.value)
    assert SECRET_AT not in str(caught.value) and SECRET_RT not in str(caught.value)
    assert snapshot(core) == before
    # ...and the coordinator still works: the refresh completes, both requests go out.
    released = core.handle_refresh_succeeded(20, 1, reauth.Credentials("at-2"))
    assert [c.is_store_credentials() for c in released] == [True, False, False]
    assert [c.id for c in released[1:]] == [1, 2]


def test_every_contract_error_is_a_reauth_error_subclass():
    for kind in ("UnknownRequest", "NotInFlight", "UnknownAttempt", "InvalidCredentials", "InvalidStatus",
                 "InvalidTime", "InvalidConfig", "InvalidArgument", "InvalidRoute", "Poisoned"):
        assert issubclass(getattr(ReauthError, kind), ReauthError)
    assert issubclass(ReauthError, Exception)


@pytest.mark.parametrize(
    "config, message",
    [
        (reauth.Config(max_pending=0), "max_pending must be in"),
        (reauth.Config(refresh_statuses=[200]), "refresh status 200 is not in 400..=599"),
        (reauth.Config(refresh_statuses=[401, 401]), "listed twice"),
        (reauth.Config(refresh_statuses=list(range(400, 420))), "more than 16"),
        (reauth.Config(refresh_window_max_refreshes=0), "must be in"),
        (reauth.Config(max_wait_ms=-1), "max_wait_ms must not be negative, got -1"),
    ],
)
def test_invalid_config_is_refused_with_its_reason(config, message):
    with pytest.raises(ReauthError.InvalidConfig) as caught:
        reauth.Coordinator(config)
    assert message in str(caught.value)


def test_config_defaults_are_the_contracts():
    assert reauth.Coordinator(reauth.Config()).config() == reauth.default_config()
    assert reauth.default_config().refresh_statuses == [401]


def test_tokens_never_show_in_repr_or_str():
    core = reauth.Coordinator()
    credentials = reauth.Credentials(SECRET_AT, refresh_token=SECRET_RT, expires_in_ms=60_000)
    core.login(0, credentials)
    sent = core.submit(1)
    core.handle_response(2, sent.id, 401)
    released = core.handle_refresh_succeeded(3, 1, reauth.Credentials(SECRET_AT + "2", refresh_token=SECRET_RT + "2"))
    shown = [repr(credentials), str(credentials), repr(sent), str(sent), repr(released), str(released)]
    for command in released:
        if command.is_store_credentials() or command.is_replay():
            shown += [repr(command.access_token), str(command.access_token)]
    for text in shown:
        assert "SECRET" not in text, text
    assert released[1].access_token.expose() == SECRET_AT + "2"
    stored = reauth.StoredCredentials(SECRET_AT, SECRET_RT, 1.0)
    assert "SECRET" not in repr(stored)


def test_a_negative_lifetime_is_refused():
    with pytest.raises(ReauthError.InvalidCredentials) as caught:
        reauth.Credentials("at", expires_in_ms=-1)
    assert "expires_in_ms is negative" in str(caught.value)


def test_route_keys_are_stable_and_non_zero():
    assert reauth.route_key("GET /users/{id}") == reauth.route_key("GET /users/{id}") != 0
    assert reauth.route_key("GET /a") != reauth.route_key("GET /b")
