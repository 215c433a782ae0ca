"""The release check's smoke test (bindings/python/release.sh), run by the interpreter an
artifact was installed into, in one process (an interpreter under qemu-user starts
slowly): reauth is imported from that install, never from the source tree, and its import
checks every function's checksum against the library; the library holds the expected
machine's code, and so does the running interpreter; the transcripts replay as
``python -m reauth.replay`` replays them; with the reference token server's URL, one
request through reauth.httpx meets a revoked access token, waits for the one refresh and
is replayed.

    python release_smoke.py x86_64|aarch64 [--server URL] TRANSCRIPT.json...

Prints one line; exits 1 with the reason when a check fails.
"""

from __future__ import annotations

import contextlib
import io
import platform
import sys
from importlib import metadata
from pathlib import Path

# ELF e_machine numbers.
ELF_MACHINES = {"x86_64": 62, "aarch64": 183}


def fail(reason: str) -> None:
    print(f"release_smoke: {reason}", file=sys.stderr)
    sys.exit(1)


def end_to_end(url: str) -> str:
    import httpx

    import reauth
    from reauth.httpx import ReauthAuth

    token_url = url + "/oauth/token"
    # One plain client for the token endpoint and the server's admin calls: each client
    # loads the CA bundle, which takes a second under emulation.
    with httpx.Client(base_url=url) as plain:
        token = plain.post(token_url, data={"grant_type": "password", "username": "u", "password": "p"}).json()
        auth = ReauthAuth(
            token_url,
            "release-smoke",
            credentials=reauth.Credentials(
                token["access_token"], refresh_token=token["refresh_token"], expires_in_ms=int(token["expires_in"] * 1000)
            ),
            token_client=plain,
        )
        with httpx.Client(auth=auth, base_url=url) as client:
            before = client.get("/api/items").status_code
            plain.post("/admin/revoke-access").raise_for_status()
            after = client.get("/api/items").status_code
    stats = auth.stats()
    auth.close()
    if (before, after, stats.refresh_cycles, stats.replayed) != (200, 200, 1, 1):
        fail(f"end to end: statuses {before}, {after}, {stats.refresh_cycles} refresh cycles, {stats.replayed} replays")
    return "e2e: a revoked token refreshed once, the request replayed (200)"


def main(argv: list[str]) -> None:
    server = None
    if len(argv) >= 3 and argv[1] == "--server":
        server = argv[2]
        del argv[1:3]
    if len(argv) < 2 or argv[0] not in ELF_MACHINES:
        fail("usage: release_smoke.py x86_64|aarch64 [--server URL] TRANSCRIPT.json...")
    machine, transcripts = argv[0], argv[1:]
    import reauth
    from reauth import replay

    package = Path(reauth.__file__).resolve().parent
    if package.is_relative_to(Path(__file__).resolve().parent / "python"):
        fail(f"reauth is imported from the source tree ({package}), not from the artifact")
    library = package / "_native" / "libreauth_uniffi.so"
    e_machine = int.from_bytes(library.read_bytes()[18:20], "little")
    if e_machine != ELF_MACHINES[machine]:
        fail(f"{library} is ELF machine {e_machine}, not {machine}")
    if platform.machine() != machine:
        fail(f"the interpreter runs on {platform.machine()}, not {machine}")
    report = io.StringIO()
    with contextlib.redirect_stdout(report), contextlib.redirect_stderr(report):
        status = replay.main(transcripts)
    if status != 0:
        fail(f"python -m reauth.replay exits {status}:\n{report.getvalue()}")
    line = (
        f"reauth {metadata.version('reauth')} on {platform.machine()} "
        f"(Python {platform.python_version()}, native library: {machine} code); "
        f"{len(transcripts)} transcripts replayed"
    )
    if server is not None:
        line += "; " + end_to_end(server)
    print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
