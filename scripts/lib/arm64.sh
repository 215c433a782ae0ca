# Sourced by the scripts that run arm64 code under emulation (the C tests, the Python wheel,
# the jar's library): qemu-user from Debian, and arm64 Debian packages unpacked into a
# sysroot of their own under target/arm64/NAME by a private apt (its own lists and cache,
# the system's sources and keys; this machine's dpkg is left alone: multiarch cannot
# install some of them, an arm64 python3 or JDK, beside the amd64 ones).
#
#   . scripts/lib/arm64.sh
#   sysroot="$(arm64_sysroot c libcjson-dev libc6-dev)"
#   qemu-aarch64 -L "$sysroot" ./program
arm64_qemu() {
    command -v qemu-aarch64 > /dev/null && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq qemu-user > /dev/null
}
# Prints the sysroot's path; unpacks the packages (and everything they depend on, down to
# libc6) once per change of the list.
arm64_sysroot() {
    local name="$1" root dir sysroot packages deb
    shift
    packages="$*"
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
    dir="$root/target/arm64/$name"
    sysroot="$dir/sysroot"
    arm64_qemu >&2
    if [ "$(cat "$dir/packages" 2> /dev/null)" != "$packages" ]; then
        rm -rf "$dir"
        mkdir -p "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial" "$sysroot"
        touch "$dir/apt/status"
        local apt=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o Debug::NoLocking=1
            -o Dir::State::Lists="$dir/apt/lists" -o Dir::State::Status="$dir/apt/status"
            -o Dir::Cache="$dir/apt/cache" -o Acquire::Languages=none)
        apt-get "${apt[@]}" update -qq >&2
        # With an empty status file, apt resolves every dependency down to libc6.
        # shellcheck disable=SC2086
        apt-get "${apt[@]}" install -qq -y --download-only --no-install-recommends $packages > /dev/null
        for deb in "$dir"/apt/cache/archives/*.deb; do dpkg-deb -x "$deb" "$sysroot"; done
        rm -rf "$dir/apt"
        echo "$packages" > "$dir/packages"
    fi
    echo "$sysroot"
}
