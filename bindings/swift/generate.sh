#!/usr/bin/env bash
# Generates the Swift bindings from the native library (uniffi-bindgen, library mode):
#   Sources/Reauth/Reauth.swift      the Swift API
#   Generated/ReauthFFI.h            the C header the Swift code calls
#   Generated/module.modulemap       its module map (module ReauthFFI)
# These files are committed and never edited by hand.
#
#   bindings/swift/generate.sh          regenerate them
#   bindings/swift/generate.sh --check  fail if the committed files differ from what the
#                                       current Rust code generates (CI's drift check)
#
# Runs on Linux or macOS: the generated files do not depend on the platform.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bindings="$(dirname "$here")"
target="$bindings/../target/bindings"
(
    cd "$bindings"
    cargo build -q --release --locked -p reauth-uniffi
    cargo build -q --locked -p uniffi-bindgen
)
library="$target/release/libreauth_uniffi.so"
[ -f "$library" ] || library="$target/release/libreauth_uniffi.dylib"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# From inside bindings/: library mode finds the crate's uniffi.toml (module names) through
# cargo metadata of the current directory.
(cd "$bindings" && "$target/debug/uniffi-bindgen" generate --no-format --language swift \
    --library "$library" --out-dir "$out" > /dev/null)
mv "$out/ReauthFFI.modulemap" "$out/module.modulemap"

pairs=(
    "Reauth.swift:Sources/Reauth/Reauth.swift"
    "ReauthFFI.h:Generated/ReauthFFI.h"
    "module.modulemap:Generated/module.modulemap"
)
if [ "${1:-}" = "--check" ]; then
    drift=0
    for pair in "${pairs[@]}"; do
        generated="$out/${pair%%:*}" committed="$here/${pair#*:}"
        if ! diff -u "$committed" "$generated" > "$out/diff" 2>&1; then
            echo "drift: bindings/swift/${pair#*:} differs from what the Rust code generates:" >&2
            head -n 40 "$out/diff" >&2
            drift=1
        fi
    done
    [ "$drift" -eq 0 ] || { echo "run bindings/swift/generate.sh and commit the result" >&2; exit 1; }
    echo "swift drift check: the 3 generated files match the Rust code (not compiled here: no Swift toolchain)"
else
    for pair in "${pairs[@]}"; do
        cp "$out/${pair%%:*}" "$here/${pair#*:}"
    done
    echo "generated: ${pairs[*]#*:}"
fi
