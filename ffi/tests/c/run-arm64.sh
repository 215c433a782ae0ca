#!/usr/bin/env bash
# The C tests on Linux arm64, under emulation: the C ABI built for aarch64 (Zig links it,
# against glibc 2.17 like the shipped libraries), the tests compiled by `zig cc` with
# -Werror, Debian's arm64 cJSON and C library unpacked into a sysroot of their own, and
# every test run by qemu-aarch64 (plain only: the sanitizers and valgrind run on x86-64,
# in run.sh).
#
#   ffi/tests/c/run-arm64.sh      # from anywhere
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$root"
. scripts/lib/tools.sh
. scripts/lib/arm64.sh
tools_venv
sysroot="$(arm64_sysroot c libcjson-dev)"
triple=aarch64-unknown-linux-gnu
rustup target list --installed | grep -qx "$triple" || rustup target add "$triple" > /dev/null
# A target directory of its own: scripts/test runs this beside builds of target/.
build="$root/target/c-arm64-build"
cargo zigbuild -q --locked -p reauth-ffi --features testing --target "$triple.2.17" --target-dir "$build"
out="$root/target/c-tests-arm64"
rm -rf "$out" && mkdir -p "$out/include"
# Only cJSON's headers from the sysroot: the C library's come from Zig, for glibc 2.17.
ln -s "$sysroot/usr/include/cjson" "$out/include/cjson"
for t in test_vectors test_errors test_threads; do
    python-zig cc -target aarch64-linux-gnu.2.17 -std=c11 -Wall -Wextra -Werror -pedantic -g -O1 \
        -I ffi/include -I ffi/tests/c -I "$out/include" "ffi/tests/c/$t.c" -o "$out/$t" \
        "$build/$triple/debug/libreauth_ffi.a" -L "$sysroot/usr/lib/aarch64-linux-gnu" \
        -lcjson -lunwind -lpthread -ldl -lm
done
[[ "$(file -b "$out/test_vectors")" == *"ARM aarch64"* ]] || { echo "run-arm64.sh: not an arm64 binary" >&2; exit 1; }
export RUST_BACKTRACE=0
run() { qemu-aarch64 -L "$sysroot" "$@"; }
run "$out/test_vectors" tests/vectors/*.json | tail -n 1
run "$out/test_errors" 2> /dev/null
run "$out/test_threads"
printf '\nC ABI on arm64 (qemu-aarch64): all C tests passed\n'
