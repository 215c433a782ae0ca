#!/usr/bin/env bash
# The C ABI's compatibility check: the library's ABI as libabigail reads it from the debug
# information (every function the header declares, the layout of every struct and enum it
# reaches) is compared with the baseline of the last release, ffi/abi/libreauth_ffi.so.0.abi.
# Additions pass (a minor version); any other change — a function removed or changed, a
# struct field moved, added or retyped, an enum value changed — fails, until the soname's
# number (build.rs) and the major version go up with a new baseline.
#
#   ffi/abi/check.sh            # compare (scripts/test)
#   ffi/abi/check.sh --update   # write the baseline (at a release, or with a new soname)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
for tool in abidw abidiff; do
    command -v "$tool" > /dev/null || { echo "ffi/abi/check.sh: $tool missing (Debian: abigail-tools)" >&2; exit 2; }
done
soname="$(sed -n 's/.*-soname,\(libreauth_ffi\.so\.[0-9]*\).*/\1/p' ffi/build.rs)"
baseline="ffi/abi/$soname.abi"
# Its own target directory, with full debug information whatever the dev profile says.
CARGO_PROFILE_DEV_DEBUG=true cargo build -q --locked -p reauth-ffi --target-dir target/abi
current="$(mktemp)"
report="$(mktemp)"
trap 'rm -f "$current" "$report"' EXIT
abidw --no-corpus-path --no-show-locs --drop-private-types --headers-dir ffi/include target/abi/debug/libreauth_ffi.so > "$current"
if [ "${1:-}" = "--update" ]; then
    cp "$current" "$baseline"
    echo "$baseline written ($(grep -c '<elf-symbol' "$baseline") functions)"
    exit 0
fi
[ -f "$baseline" ] || { echo "no baseline for $soname: run ffi/abi/check.sh --update" >&2; exit 1; }
if abidiff --no-added-syms "$baseline" "$current" > "$report"; then
    added="$(abidiff "$baseline" "$current" | grep -oE '[0-9]+ Added function' | grep -oE '^[0-9]+' || true)"
    echo "C ABI: compatible with $baseline ($(grep -c '<elf-symbol' "$baseline") functions unchanged, ${added:-0} added)"
else
    cat "$report" >&2
    echo "C ABI: an incompatible change against $baseline (above). Keep the old layout, or make it" >&2
    echo "a new major version: bump the soname in ffi/build.rs and run ffi/abi/check.sh --update." >&2
    exit 1
fi
