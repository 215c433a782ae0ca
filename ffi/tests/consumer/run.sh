#!/usr/bin/env bash
# Installs reauth into a scratch prefix and links a C program against it three ways:
# CMake find_package (shared and static) and pkg-config.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
prefix="$root/target/c-install"
build="$root/target/c-consumer"
rm -rf "$prefix" "$build"
"$root/ffi/install.sh" "$prefix"
cmake -S "$root/ffi/tests/consumer" -B "$build" -DCMAKE_PREFIX_PATH="$prefix" > /dev/null
cmake --build "$build" > /dev/null
"$build/consumer"
"$build/consumer_static"
gcc -std=c11 -Wall -Wextra -Werror "$root/ffi/tests/consumer/main.c" -o "$build/consumer_pkgconfig" \
    $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs reauth)
LD_LIBRARY_PATH="$prefix/lib" "$build/consumer_pkgconfig"
echo "C consumers: CMake (shared, static) and pkg-config builds link and run"
