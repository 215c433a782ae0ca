"""Every conformance transcript, replayed through the Python bindings, gives the batches
the Rust core gives; the replayer's exit codes match the Rust one's."""

import json
import subprocess

import pytest

from conftest import PYTHON, VECTORS
from reauth.replay import replay


def test_there_are_transcripts():
    assert len(VECTORS) >= 30


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
def test_transcript_replays_identically(path):
    mismatches = replay(json.loads(path.read_text()))
    assert mismatches == [], "\n".join(str(m) for m in mismatches)


def run_replay(*paths):
    return subprocess.run([PYTHON, "-m", "reauth.replay", *map(str, paths)], capture_output=True, text=True)


def test_replay_cli_exit_0_when_all_match():
    done = run_replay(*VECTORS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("ok ") == len(VECTORS)


def test_replay_cli_exit_1_with_expected_versus_actual(tmp_path):
    transcript = json.loads((VECTORS[0].parent / "rule-05-current-401-starts-one-refresh.json").read_text())
    for step in transcript["steps"]:
        for command in step.get("expect", []):
            if command["type"] == "refresh":
                command["refresh_token"] = "rt-wrong"
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(transcript))
    done = run_replay(path)
    assert done.returncode == 1
    assert "MISMATCH" in done.stdout and "expected" in done.stdout and "actual" in done.stdout
    assert "rt-wrong" in done.stdout and "rt-1" in done.stdout


@pytest.mark.parametrize("content", [None, "{not json", '{"steps": [{"at": 0, "input": {"type": "bogus"}}]}'])
def test_replay_cli_exit_2_when_unreadable(tmp_path, content):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    done = run_replay(path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert str(path) in done.stderr
