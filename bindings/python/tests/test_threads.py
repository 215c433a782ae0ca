"""16 threads apply mixed inputs to one coordinator: every request ends exactly once."""

import random
import threading

import reauth


def test_sixteen_threads_every_request_ends_exactly_once():
    # A window wide enough that the random 401s cannot log the session out: the lower
    # bounds on work done below must not depend on the interleaving.
    core = reauth.Coordinator(reauth.Config(max_retries=2, max_wait_ms=3_600_000, refresh_timeout_ms=3_600_000,
                                            refresh_window_max_refreshes=10_000))
    core.login(0, reauth.Credentials("at-0", refresh_token="rt-0"))
    lock = threading.Lock()
    submitted, in_flight, attempts = set(), set(), set()
    ended = {}  # id -> terminal commands seen
    cancelled = set()
    clock = [1]
    issued = [0]
    applied = {"response": 0, "refresh": 0, "transport": 0, "cancel": 0, "timeout": 0}
    races = [0]

    def record(commands):
        with lock:
            for c in commands:
                if c.is_send() or c.is_replay():
                    in_flight.add(c.id)
                elif c.is_complete() or c.is_fail():
                    ended[c.id] = ended.get(c.id, 0) + 1
                    in_flight.discard(c.id)
                elif c.is_refresh():
                    attempts.add(c.attempt)

    def tick():
        with lock:
            clock[0] += 1
            return clock[0]

    def pick(items):
        with lock:
            return random.choice(sorted(items)) if items else None

    def worker(seed):
        rng = random.Random(seed)
        for _ in range(400):
            roll = rng.random()
            try:
                if roll < 0.35:
                    s = core.submit(tick(), reauth.RequestOptions(replayable=rng.random() < 0.8))
                    with lock:
                        submitted.add(s.id)
                    record(s.commands)
                elif roll < 0.75:
                    rid = pick(in_flight)
                    if rid is not None:
                        record(core.handle_response(tick(), rid, rng.choice([200, 200, 401, 500])))
                        applied["response"] += 1
                elif roll < 0.85:
                    a = pick(attempts)
                    if a is not None:
                        with lock:
                            attempts.discard(a)
                            issued[0] += 1
                            n = issued[0]
                        if rng.random() < 0.8:
                            record(core.handle_refresh_succeeded(tick(), a, reauth.Credentials(f"at-{n}", refresh_token=f"rt-{n}")))
                        else:
                            record(core.handle_refresh_failed(tick(), a, reauth.RefreshFailure.TRANSIENT(retry_after_ms=None)))
                        applied["refresh"] += 1
                elif roll < 0.9:
                    rid = pick(in_flight)
                    if rid is not None:
                        record(core.handle_transport_error(tick(), rid))
                        applied["transport"] += 1
                elif roll < 0.95:
                    rid = pick(submitted - set(ended))
                    if rid is not None:
                        core.cancel(tick(), rid)
                        with lock:
                            cancelled.add(rid)
                            in_flight.discard(rid)
                        applied["cancel"] += 1
                else:
                    record(core.handle_timeout(tick()))
                    applied["timeout"] += 1
            except (reauth.ReauthError.UnknownRequest, reauth.ReauthError.NotInFlight, reauth.ReauthError.UnknownAttempt):
                # A racing thread ended that request or attempt first (or it waits for a
                # refresh): refused, no change. Any other error fails the test.
                with lock:
                    races[0] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # Settle: refreshes succeed, everything in flight answers 200, time passes.
    for step in range(10_000):
        if core.open_requests() == 0:
            break
        now = tick() + 10**6 * (step % 2)
        if attempts:
            a = attempts.pop()
            record(core.handle_refresh_succeeded(now, a, reauth.Credentials(f"at-s{step}", refresh_token=f"rt-s{step}")))
        elif in_flight:
            rid = sorted(in_flight)[0]
            try:
                record(core.handle_response(now, rid, 200))
            except (reauth.ReauthError.UnknownRequest, reauth.ReauthError.NotInFlight):
                # Cancelled while a racing batch re-listed it, or it waits for a refresh
                # since its 401 (its Replay lists it again).
                in_flight.discard(rid)
        else:
            record(core.handle_timeout(now))
    assert core.open_requests() == 0
    # Work was done: every kind of input was applied many times across the threads.
    assert len(submitted) >= 1_000, len(submitted)
    # Refreshes depend most on the interleaving (16 to 60 seen): the bound is the Kotlin twin's.
    assert applied["response"] >= 500 and applied["refresh"] >= 5 and applied["cancel"] >= 50, applied
    assert all(n == 1 for n in ended.values()), "a request ended twice"
    assert submitted == set(ended) | cancelled, "a request was lost"
    # A cancel that succeeded found the request open; it never ends after that.
    assert not (set(ended) & cancelled), "a cancelled request got a terminal command"
    stats = core.stats()
    assert stats.submitted == len(submitted)
    assert stats.cancelled == len(cancelled)
    assert stats.completed + sum(vars(stats.failed).values()) == len(ended)
