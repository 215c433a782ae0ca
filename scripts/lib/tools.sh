# Sourced by scripts/release, scripts/docs and the bindings' release scripts: puts the
# pinned release tools on PATH. The Python ones (scripts/lib/release-tools.txt) go into
# target/tools-venv once per change of that list; actionlint (a Go program; its PyPI
# wrapper downloads from GitHub, which this machine cannot reach) is built by
# `go install` into target/tools-venv/bin.
ACTIONLINT_VERSION=v1.7.12
tools_venv() {
    local root venv stamp
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
    venv="$root/target/tools-venv"
    stamp="$venv/.requirements"
    if ! { cmp -s "$root/scripts/lib/release-tools.txt" "$stamp" && [ -x "$venv/bin/actionlint" ]; } 2> /dev/null; then
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/scripts/lib/release-tools.txt"
        GOBIN="$venv/bin" GOFLAGS=-mod=mod go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
        cp "$root/scripts/lib/release-tools.txt" "$stamp"
    fi
    export PATH="$venv/bin:$PATH"
}
