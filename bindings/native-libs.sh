#!/usr/bin/env bash
# Builds the UniFFI library (reauth-uniffi) that the Python wheel and the Maven jar ship,
# for every Linux platform they carry, linked by Zig against glibc 2.17 (manylinux2014:
# CentOS 7, Debian 8, Ubuntu 14.04 and anything newer):
#   target/native/linux-x86-64/libreauth_uniffi.so
#   target/native/linux-aarch64/libreauth_uniffi.so
# (JNA's resource-path names). Zig's linker writes no symbol table, so the language
# bindings are generated from the host's plain build (target/bindings/release/libreauth_uniffi.so),
# whose exported API is the same code; the bindings check each function's checksum when
# they load a library (Kotlin and Swift in uniffi's generated code; Python in
# reauth/__init__.py, since uniffi 0.32's Python leaves that check uncalled), so a
# mismatched pair fails at import, not later.
#
#   bindings/native-libs.sh                 # both platforms
#   bindings/native-libs.sh linux-aarch64   # one
set -euo pipefail
bindings="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$bindings")"
. "$root/scripts/lib/tools.sh"
tools_venv
GLIBC_FLOOR=2.17
platforms=("$@")
[ ${#platforms[@]} -gt 0 ] || platforms=(linux-x86-64 linux-aarch64)
cd "$bindings"
for platform in "${platforms[@]}"; do
    case "$platform" in
        linux-x86-64) triple=x86_64-unknown-linux-gnu ;;
        linux-aarch64) triple=aarch64-unknown-linux-gnu ;;
        *)
            # Another OS's library (darwin-aarch64, win32-x86-64, ...) cannot be linked here:
            # the release workflow builds it on that OS and puts it in target/native/PLATFORM/.
            lib="$(ls "$root/target/native/$platform"/*reauth_uniffi.* 2> /dev/null | head -n 1 || true)"
            if [ -z "$lib" ]; then
                echo "native-libs.sh: '$platform' is built on its own OS (.github/workflows/release.yml), not here:" \
                    "put its library in target/native/$platform/ (this machine builds linux-x86-64 and linux-aarch64)" >&2
                exit 2
            fi
            echo "target/native/$platform/$(basename "$lib"): $(stat -c %s "$lib") bytes, built elsewhere"
            continue
            ;;
    esac
    rustup target list --installed | grep -qx "$triple" || rustup target add "$triple" > /dev/null
    cargo zigbuild -q --release --locked -p reauth-uniffi --target "$triple.$GLIBC_FLOOR"
    lib="$root/target/bindings/$triple/release/libreauth_uniffi.so"
    # The newest glibc symbol version it needs must be the floor's or older.
    newest="$(readelf -V "$lib" | grep -oE 'GLIBC_[0-9]+\.[0-9]+' | sed 's/GLIBC_//' | sort -uV | tail -n 1)"
    if [ "$(printf '%s\n%s\n' "$newest" "$GLIBC_FLOOR" | sort -V | tail -n 1)" != "$GLIBC_FLOOR" ]; then
        echo "native-libs.sh: $lib needs glibc $newest, newer than $GLIBC_FLOOR" >&2
        exit 1
    fi
    mkdir -p "$root/target/native/$platform"
    cp "$lib" "$root/target/native/$platform/libreauth_uniffi.so"
    echo "target/native/$platform/libreauth_uniffi.so: $(stat -c %s "$lib") bytes, glibc >= $GLIBC_FLOOR (newest symbol version needed: $newest)"
done
