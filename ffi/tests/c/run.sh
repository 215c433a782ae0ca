#!/usr/bin/env bash
# Builds the C tests against the reauth C ABI and runs them three ways: plain, under
# AddressSanitizer + UndefinedBehaviorSanitizer, and under valgrind (memcheck, leaks are
# errors). Needs gcc, libcjson-dev and valgrind.
#
#   ffi/tests/c/run.sh            # from the repository root
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$root"
out="$root/target/c-tests"
mkdir -p "$out"

cargo build -q --locked -p reauth-ffi --features testing
lib="$root/target/debug/libreauth_ffi.a"
CFLAGS=(-std=c11 -Wall -Wextra -Werror -pedantic -g -O1 -I ffi/include -I ffi/tests/c)
LIBS=("$lib" -lcjson -lpthread -ldl -lm)
vectors=(tests/vectors/*.json)

for t in test_vectors test_errors test_threads; do
    gcc "${CFLAGS[@]}" "ffi/tests/c/$t.c" -o "$out/$t" "${LIBS[@]}"
    gcc "${CFLAGS[@]}" -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all \
        "ffi/tests/c/$t.c" -o "$out/$t.asan" "${LIBS[@]}"
done

run() { # name, binary, args…
    local name=$1; shift
    printf '\n--- %s\n' "$name"
    "$@"
}

# test_errors panics on purpose (REAUTH_STATUS_PANIC): keep Rust's report to one line.
export RUST_BACKTRACE=0
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for mode in "" ".asan"; do
    run "test_vectors$mode" "$out/test_vectors$mode" "${vectors[@]}" | tail -n 1
    run "test_errors$mode" "$out/test_errors$mode"
    run "test_threads$mode" "$out/test_threads$mode"
done

VG=(valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,possible --quiet)
run "test_vectors (valgrind)" "${VG[@]}" "$out/test_vectors" "${vectors[@]}" | tail -n 1
run "test_errors (valgrind)" "${VG[@]}" "$out/test_errors"
run "test_threads (valgrind)" "${VG[@]}" "$out/test_threads"
printf '\nC ABI: all C tests passed (plain, ASan+UBSan, valgrind)\n'
