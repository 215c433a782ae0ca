#!/usr/bin/env bash
# The jar on Linux arm64: runs jar-check's Check (compiled, beside the jar and its runtime
# dependencies, in APP_DIR — check-jar.sh --arm64 makes it) on an arm64 JVM under
# qemu-user, so the jar's linux-aarch64/libreauth_uniffi.so is the library that loads
# (from the jar, by JNA, with its JNI fast path bound).
#
#   bindings/kotlin/check-arm64.sh APP_DIR
#
# The JVM is Debian's openjdk-17-jre-headless for arm64 with the libraries it links
# (libc6, zlib1g, libgcc-s1, libstdc++6): fetched by apt-get download through a private
# apt state under target/jvm-arm64 (the machine's apt configuration is not changed) and
# unpacked with dpkg -x into target/jvm-arm64/sysroot, once. Needs qemu-aarch64 (Debian
# package qemu-user).
set -euo pipefail
app="$(cd "$1" && pwd)"
root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="$root/target/jvm-arm64"
sysroot="$cache/sysroot"
java="/usr/lib/jvm/java-17-openjdk-arm64/bin/java"
command -v qemu-aarch64 > /dev/null || { echo "check-arm64.sh: qemu-aarch64 not found (Debian package qemu-user)" >&2; exit 1; }
if [ ! -x "$sysroot$java" ]; then
    rm -rf "$cache"
    state="$cache/apt"
    mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$cache/debs" "$cache/unpacked"
    touch "$state/status"
    apt=(-o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache" -o "Dir::State::status=$state/status"
        -o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o APT::Sandbox::User=root)
    apt-get "${apt[@]}" update -qq > "$cache/apt.log" 2>&1 || { cat "$cache/apt.log" >&2; exit 1; }
    (cd "$cache/debs" && apt-get "${apt[@]}" download -qq openjdk-17-jre-headless libc6 zlib1g libgcc-s1 libstdc++6) \
        >> "$cache/apt.log" 2>&1 || { cat "$cache/apt.log" >&2; exit 1; }
    for deb in "$cache"/debs/*.deb; do dpkg -x "$deb" "$cache/unpacked"; done
    rm -rf "$state" "$cache/debs"
    mv "$cache/unpacked" "$sysroot"
fi
cd "$app"
env -i PATH=/usr/bin:/bin HOME="$app" qemu-aarch64 -L "$sysroot" "$sysroot$java" -cp "*:." Check
