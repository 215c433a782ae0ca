#!/usr/bin/env bash
# Builds the native libraries the jar carries and generates the Kotlin bindings, into OUT:
#   OUT/kotlin/dev/reauth/reauth_uniffi.kt               (generated, never edited)
#   OUT/resources/PLATFORM/libreauth_uniffi.so           (one per platform, JNA's resource path)
#   OUT/resources/dev/reauth/native.properties           (the platforms carried, read by NativePlatforms)
#
#   build-native.sh OUT VERSION "linux-x86-64 linux-aarch64"
#
# Run by Maven in generate-sources with the POM's version and reauth.native.platforms.
# The libraries are bindings/native-libs.sh's (linked by Zig against glibc 2.17; no symbol
# table, nothing to strip). The bindings are generated from the host's plain build of the
# same code (the Zig-linked one has no symbol table to read the UniFFI metadata from);
# they check every function's checksum when they load a library, so a mismatched pair
# fails at load. Cargo keeps all the builds incremental.
set -euo pipefail
out="$1"
version="$2"
read -ra platforms <<< "${*:3}"
[ ${#platforms[@]} -gt 0 ] || { echo "build-native.sh: no platforms given" >&2; exit 2; }
bindings="$(cd "$(dirname "$0")/.." && pwd)"
target="$bindings/../target"
cd "$bindings"
# It prints "…: N bytes, glibc >= 2.17 (…)" per library: the newest floor goes into the list.
built="$("$bindings/native-libs.sh" "${platforms[@]}")"
glibc="$(grep -oE 'glibc >= [0-9.]+' <<< "$built" | cut -d' ' -f3 | sort -uV | tail -n 1 || true)"
# The host's plain library (for its symbols), then the bindgen on its own (uniffi's CLI
# features stay out of the shipped library's build).
cargo build -q --release --locked -p reauth-uniffi
cargo build -q --locked -p uniffi-bindgen
# Written beside, then moved in only where something changed: an unchanged build leaves
# the files (and their times) as they were, so the compilers see nothing new.
next="$out/next"
rm -rf "$next"
mkdir -p "$next/kotlin" "$next/resources/dev/reauth"
"$target/bindings/debug/uniffi-bindgen" generate --no-format --language kotlin \
    --library "$target/bindings/release/libreauth_uniffi.so" \
    --out-dir "$next/kotlin" > /dev/null
for platform in "${platforms[@]}"; do
    mkdir -p "$next/resources/$platform"
    cp "$target/native/$platform"/*reauth_uniffi.* "$next/resources/$platform/"
done
{
    echo "# Written by bindings/kotlin/build-native.sh: the platforms (JNA resource prefixes)"
    echo "# whose libreauth_uniffi this jar carries, the version they were built from and the"
    echo "# oldest glibc they run on."
    echo "version=$version"
    echo "platforms=${platforms[*]}"
    echo "glibc=$glibc"
} > "$next/resources/dev/reauth/native.properties"
for dir in kotlin resources; do
    if ! diff -rq "$next/$dir" "$out/$dir" > /dev/null 2>&1; then
        rm -rf "${out:?}/$dir"
        mv "$next/$dir" "$out/$dir"
    fi
done
rm -rf "$next"
