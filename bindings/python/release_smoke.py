"""The release check's smoke test (bindings/python/release.sh), run by the interpreter an
artifact was installed into: reauth is imported from that install, never from the source
tree; its native library holds the expected machine's code, and so does the running
interpreter (under qemu-user for arm64); with the reference token server's URL, one
request through reauth.httpx meets a revoked access token, is held while the one refresh
runs, and is replayed.

    python release_smoke.py MACHINE [SERVER_URL]      # MACHINE: x86_64 or aarch64

Prints one line; exits 1 with the reason when a check fails.
"""

from __future__ import annotations

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
    return "e2e: a revoked token refreshed once and the request replayed (200)"


def main(argv: list[str]) -> None:
    if len(argv) not in (1, 2) or argv[0] not in ELF_MACHINES:
        fail("usage: release_smoke.py x86_64|aarch64 [SERVER_URL]")
    machine = argv[0]
    import reauth

    package = Path(reauth.__file__).resolve().parent
    if package.is_relative_to(Path(__file__).resolve().parent / "python"):
        fail(f"reauth is imported from the source tree ({package}), not from the artifact")
    library = package / "_native" / "libreauth_uniffi.so"
    e_machine = int.from_bytes(library.read_bytes()[18:20], "little")
    if e_machine != ELF_MACHINES[machine]:
        fail(f"{library} is ELF machine {e_machine}, not {machine}")
    if platform.machine() != machine:
        fail(f"the interpreter runs on {platform.machine()}, not {machine}")
    line = (
        f"reauth {metadata.version('reauth')} on {platform.machine()} "
        f"(Python {platform.python_version()}, native library: {machine} code)"
    )
    if len(argv) == 2:
        line += "; " + end_to_end(argv[1])
    print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
