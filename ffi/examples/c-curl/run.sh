#!/usr/bin/env bash
# Builds the libcurl host and runs it against the reference token server (1 s tokens).
# Needs libcurl4-openssl-dev and libcjson-dev.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$root"
cargo build -q --locked -p reauth-ffi -p reauth-testserver
out="$root/target/c-curl"
mkdir -p "$out"
gcc -std=c11 -Wall -Wextra -Werror -O2 -I ffi/include ffi/examples/c-curl/main.c -o "$out/c-curl" \
    target/debug/libreauth_ffi.a -lcurl -lcjson -lpthread -ldl -lm

# Start the server; its first line names the address. Closing its stdin stops it.
coproc SERVER { exec target/debug/reauth-testserver --access-ttl-ms 1000 2>/dev/null; }
read -r line <&"${SERVER[0]}"
url="${line#listening on }"
trap 'exec {SERVER[1]}>&-; wait "$SERVER_PID" 2>/dev/null || true' EXIT
"$out/c-curl" "$url" "${1:-3}"
