#!/usr/bin/env bash
# Builds the native library and generates the Kotlin bindings from it, into OUT:
#   OUT/kotlin/dev/reauth/reauth_uniffi.kt          (generated, never edited)
#   OUT/resources/linux-x86-64/libreauth_uniffi.so  (stripped, at JNA's resource path)
# Run by Maven in generate-sources. Cargo keeps both builds incremental.
set -euo pipefail
out="$1"
bindings="$(cd "$(dirname "$0")/.." && pwd)"
target="$bindings/../target"
cd "$bindings"
# The library alone (uniffi without its CLI features), then the bindgen on its own.
cargo build -q --release --locked -p reauth-uniffi
cargo build -q --locked -p uniffi-bindgen
rm -rf "$out/kotlin"
mkdir -p "$out/kotlin" "$out/resources/linux-x86-64"
"$target/debug/uniffi-bindgen" generate --no-format --language kotlin \
    --library "$target/release/libreauth_uniffi.so" \
    --out-dir "$out/kotlin" > /dev/null
# Generation read the library's symbols; the copy that ships needs none.
strip -o "$out/resources/linux-x86-64/libreauth_uniffi.so" "$target/release/libreauth_uniffi.so"
