"""The flight recorder through the Python bindings: a recording that starts mid-session
replays in the Python replayer (start state and causes included) and is explained by
``python -m reauth.explain``, ending with why the session ended; no token text in it."""

import json
import subprocess

from conftest import PYTHON, VECTORS
from reauth import Coordinator, Credentials, RefreshFailure, RequestOptions
from reauth.replay import replay


def rejected_session() -> Coordinator:
    core = Coordinator()
    core.record(3)
    core.login(0, Credentials("at-secret-1", refresh_token="rt-secret-1"))
    ids = [core.submit(t, RequestOptions()).id for t in range(1, 5)]
    refresh = [c for c in core.handle_response(10, ids[0], 401) if c.is_refresh()]
    core.handle_response(11, ids[1], 401)
    core.handle_refresh_failed(20, refresh[0].attempt, RefreshFailure.REJECTED())
    core.handle_response(21, ids[2], 200)
    return core


def explain(tmp_path, text, name="trace.json"):
    path = tmp_path / name
    path.write_text(text)
    return subprocess.run([PYTHON, "-m", "reauth.explain", str(path)], capture_output=True, text=True)


def test_a_mid_session_recording_replays_and_is_explained(tmp_path):
    text = rejected_session().trace_json()
    assert "secret" not in text
    transcript = json.loads(text)
    assert "start" in transcript, "the recorder let inputs go: it starts mid-session"
    assert any(step.get("causes") for step in transcript["steps"])
    assert replay(transcript) == []
    done = explain(tmp_path, text)
    assert done.returncode == 0, done.stderr
    assert "rule 7.9 (Rejected) logged out" in done.stdout
    assert "Why the session ended: at t=20" in done.stdout
    assert "secret" not in done.stdout


def test_an_edited_cause_does_not_replay(tmp_path):
    transcript = json.loads(rejected_session().trace_json())
    for step in transcript["steps"]:
        step["causes"] = ["7.10" if c == "7.9" else c for c in step.get("causes", [])]
    assert replay(transcript) != []
    done = explain(tmp_path, json.dumps(transcript))
    assert done.returncode == 1
    assert "does not replay" in done.stderr


def test_garbage_is_not_a_transcript(tmp_path):
    done = explain(tmp_path, '{"name": 1}')
    assert done.returncode == 2
    assert "invalid transcript" in done.stderr


def test_every_vector_is_explained(tmp_path):
    for path in VECTORS:
        done = subprocess.run([PYTHON, "-m", "reauth.explain", str(path)], capture_output=True, text=True)
        assert done.returncode == 0, f"{path}: {done.stderr}"
        assert " inputs, t = " in done.stdout


def test_hostile_files_are_refused_clearly(tmp_path):
    """Shapes that are not transcripts exit 2 with a message, never a traceback."""
    run = lambda path: subprocess.run([PYTHON, "-m", "reauth.replay", str(path)], capture_output=True, text=True)
    recording = json.loads(rejected_session().trace_json())
    bad_cause = dict(recording, steps=[dict(s, causes=["7.01"]) if s.get("causes") else s for s in recording["steps"]])
    for name, content in {
        "list.json": "[1, 2]",
        "steps-object.json": '{"steps": {}}',
        "step-list.json": '{"steps": [[1]]}',
        "huge-id.json": '{"steps": [{"at": 0, "input": {"type": "response", "id": 18446744073709551615, "status": 200}}]}',
        "deep.json": "[" * 5000 + "]" * 5000,
        "bad-cause.json": json.dumps(bad_cause),
    }.items():
        path = tmp_path / name
        path.write_text(content)
        done = run(path)
        assert done.returncode == 2, f"{name}: {done.returncode} {done.stdout} {done.stderr}"
        assert "Traceback" not in done.stderr, f"{name}: {done.stderr}"


def test_a_lone_surrogate_is_an_invalid_transcript():
    import pytest
    from reauth import ReauthError
    from reauth.explain import explain as explain_text

    with pytest.raises(ReauthError.InvalidTranscript):
        explain_text('{"name": "\ud800"}')
