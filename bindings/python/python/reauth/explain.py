"""Explains a flight recording (or any conformance transcript): each input, each command
it produced and the contract rule behind it, then why the session ended.

    python -m reauth.explain trace.json

The recording is replayed first (from the state it starts in) by the core itself, and
its causes checked against the core's: an explanation never rests on a file that does
not replay. The same explanation as ``cargo run -p reauth-testkit --bin explain``: both
are the core's.

Exit status: 0 explained, 1 the file does not replay (every differing step printed), 2 a
file that cannot be read or is not a transcript.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from ._driver import is_utf8
from ._native import ReauthError, explain_transcript

__all__ = ["explain", "main"]


def explain(transcript_json: str) -> str:
    """The timeline of a transcript (JSON text). Raises ``ReauthError.InvalidTranscript``
    for text that is not one and ``ReauthError.TranscriptMismatch`` for one that does not
    replay."""
    if not is_utf8(transcript_json):
        raise ReauthError.InvalidTranscript("the transcript is not valid UTF-8 (it holds a lone surrogate)")
    return explain_transcript(transcript_json)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: python -m reauth.explain TRACE.json", file=sys.stderr)
        return 2
    path = args[0]
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, ValueError) as e:
        print(f"{path}: cannot read: {e}", file=sys.stderr)
        return 2
    try:
        print(explain(text), end="")
    except ReauthError.TranscriptMismatch as e:
        print(f"{path}: {e}; not explained", file=sys.stderr)
        return 1
    except ReauthError as e:
        print(f"{path}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
