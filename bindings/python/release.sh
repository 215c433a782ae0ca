#!/usr/bin/env bash
# Builds the Python package's release artifacts into OUT_DIR and checks each one as the
# package index and its users will meet it:
#   reauth-VERSION.tar.gz    (the sdist: every platform without a wheel builds from it)
#   reauth-VERSION-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
#   reauth-VERSION-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.whl
# The wheels need glibc 2.17 or newer. Each carries the library bindings/native-libs.sh
# links with Zig against glibc 2.17. uniffi's bindgen cannot read a Zig-linked library, so
# the Python module comes from maturin's plain build of the same code, and `import reauth`
# checks every function's checksum against the library it loaded (reauth/__init__.py): a
# mismatched pair fails at import, which every smoke below does.
#
# Checks: the sdist builds in a fresh virtualenv (pip, maturin from PyPI, cargo) and its
# wheel replays every transcript; twine check --strict and PyPI's classifier list for
# every file; auditwheel show finds each wheel consistent with manylinux_2_17 for its own
# machine; the x86-64 wheel in a fresh virtualenv and the arm64 wheel in Debian's arm64
# CPython under qemu-user import reauth, replay every transcript and refresh once against
# the reference token server.
#
#   bindings/python/release.sh OUT_DIR
set -euo pipefail
if [ $# -ne 1 ]; then
    echo "usage: bindings/python/release.sh OUT_DIR" >&2
    exit 2
fi
mkdir -p "$1"
out="$(cd "$1" && pwd)"
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$root/target/python-release"
. "$root/scripts/lib/tools.sh"
. "$root/scripts/lib/arm64.sh"
tools_venv
cd "$root"
rm -rf "$work"
mkdir -p "$work"
# A stale artifact of another version must not be checked or published with these.
rm -f "$out"/reauth-*.whl "$out"/reauth-*.tar.gz
cargo build -q --release --locked -p reauth-testserver
bindings/native-libs.sh linux-x86-64 linux-aarch64 > /dev/null
transcripts=(tests/vectors/*.json tests/recordings/*.json)
declare -A checks

# The sdist first, and every wheel from it (as `python -m build` does): its build proves
# it complete, and the wheels carry exactly its Python sources, metadata and licenses.
(cd bindings/python && maturin sdist -o "$work/sdist") > "$work/sdist.log" 2>&1 \
    || { cat "$work/sdist.log" >&2; exit 1; }
built=("$work"/sdist/reauth-*.tar.gz)
mv "${built[0]}" "$out/"
sdist="$out/${built[0]##*/}"
name_version="$(basename "$sdist" .tar.gz)"

# pip builds it as a platform without a wheel does: a fresh virtualenv, build isolation
# (maturin from PyPI), cargo. Left to pip, it would be unpacked into a new random
# directory and its path crates compiled afresh into target/ on every run; it is unpacked
# into one place instead, where only the files whose content changed are rewritten, so
# that cargo rebuilds what changed (with the sdist's fixed timestamps kept, cargo would
# take a changed file's old build for fresh). Cargo compiles into the bindings workspace's
# target directory, where the registry crates are already built (a cold one costs minutes,
# most for the bindgen's). What it links there under the shared names (release/
# libreauth_uniffi.so, debug/uniffi-bindgen) is built from the same code, and the
# repository's next cargo build of them, even with nothing to compile, links its own back.
staging="$work/sdist-src/$name_version"
build_tree="$root/target/python-sdist/$name_version"
mkdir -p "$work/sdist-src" "$build_tree"
tar -xzf "$sdist" -C "$work/sdist-src"
(cd "$staging" && find . -type f) | while read -r file; do
    if ! cmp -s "$staging/$file" "$build_tree/$file"; then
        mkdir -p "$(dirname "$build_tree/$file")"
        cp "$staging/$file" "$build_tree/$file"
    fi
done
(cd "$build_tree" && find . -type f) | while read -r file; do
    [ -e "$staging/$file" ] || rm "$build_tree/$file"
done
python3 -m venv "$work/venv-sdist"
CARGO_TARGET_DIR="$root/target/bindings" "$work/venv-sdist/bin/pip" wheel -q --disable-pip-version-check --no-deps \
    -w "$work/from-sdist" "$build_tree" > "$work/sdist-build.log" 2>&1 \
    || { cat "$work/sdist-build.log" >&2; exit 1; }
from_sdist=("$work"/from-sdist/reauth-*.whl)
"$work/venv-sdist/bin/pip" install -q --disable-pip-version-check "${from_sdist[0]}"
echo "sdist, built from source: $("$work/venv-sdist/bin/python" bindings/python/release_smoke.py x86_64 "${transcripts[@]}")"
checks[sdist]="built from source in a fresh venv (pip, maturin, cargo): import, ${#transcripts[@]} transcripts"

# Each platform's wheel is the one built from the sdist with its library swapped.
wheel unpack -d "$work/unpacked" "${from_sdist[0]}" > /dev/null
tree="$work/unpacked/$name_version"
declare -A wheels
for arch in x86_64 aarch64; do
    case "$arch" in
        x86_64) platform=linux-x86-64 ;;
        aarch64) platform=linux-aarch64 ;;
    esac
    tag="manylinux_2_17_$arch"
    cp "target/native/$platform/libreauth_uniffi.so" "$tree/reauth/_native/libreauth_uniffi.so"
    mkdir -p "$work/$arch"
    # pack writes RECORD with the swapped library's hash; tags rewrites WHEEL and RECORD.
    wheel pack -d "$work/$arch" "$tree" > /dev/null
    wheel tags --remove --platform-tag "$tag.manylinux2014_$arch" "$work/$arch"/*.whl > /dev/null
    # The same tag set in the order auditwheel and maturin write it (the wheel tool sorts).
    wheels[$arch]="$out/$name_version-py3-none-$tag.manylinux2014_$arch.whl"
    mv "$work/$arch"/*.whl "${wheels[$arch]}"
    # The tag is proved, not taken from the file name: auditwheel reads the library's
    # machine and the newest glibc symbol version it needs.
    audit="$(auditwheel show "${wheels[$arch]}" 2>&1)" || true
    if [[ "$(tr -s ' \n' ' ' <<< "$audit")" != *"is consistent with the following platform tag: \"$tag\""* ]]; then
        echo "release.sh: auditwheel does not find ${wheels[$arch]##*/} consistent with $tag:" >&2
        echo "$audit" >&2
        exit 1
    fi
    checks[$arch]="auditwheel: $tag"
done

twine check --strict "$sdist" "${wheels[@]}" > /dev/null
# PyPI refuses an upload with a classifier it does not know; twine does not look.
python3 - "$work/unpacked/$name_version/$name_version.dist-info/METADATA" <<'EOF'
import sys
from email.parser import Parser
from trove_classifiers import classifiers

with open(sys.argv[1], encoding="utf-8") as metadata:
    unknown = [c for c in Parser().parse(metadata).get_all("Classifier", []) if c not in classifiers]
if unknown:
    sys.exit(f"release.sh: classifiers PyPI does not know: {unknown}")
EOF
checks[sdist]="twine, classifiers; ${checks[sdist]}"
for arch in x86_64 aarch64; do checks[$arch]="twine, classifiers, ${checks[$arch]}"; done

# The reference token server, for one end-to-end refresh from each wheel. It runs until
# its standard input closes.
mkfifo "$work/server.in"
target/release/reauth-testserver < "$work/server.in" > "$work/server.out" 2> /dev/null &
server_pid=$!
exec 3> "$work/server.in"
trap 'exec 3>&-; wait "$server_pid" 2> /dev/null || true' EXIT
for _ in $(seq 100); do
    grep -q '^listening on ' "$work/server.out" && break
    sleep 0.1
done
server_url="$(sed -n 's/^listening on //p' "$work/server.out")"
[ -n "$server_url" ] || { echo "release.sh: the reference token server did not start" >&2; exit 1; }
httpx_pin="$(grep -E '^httpx==' bindings/python/requirements-test.txt)"

# The x86-64 wheel as a user installs it: a fresh virtualenv, the file alone.
python3 -m venv "$work/venv-x86_64"
"$work/venv-x86_64/bin/pip" install -q --disable-pip-version-check "${wheels[x86_64]}" "$httpx_pin"
echo "x86_64 wheel: $("$work/venv-x86_64/bin/python" bindings/python/release_smoke.py x86_64 \
    --server "$server_url" "${transcripts[@]}")"
checks[x86_64]+=", fresh venv: import, ${#transcripts[@]} transcripts, e2e"

# The arm64 wheel in Debian's arm64 CPython under qemu-user (PyPI has no interpreters),
# unpacked with every library it needs into a sysroot of its own (scripts/lib/arm64.sh).
sysroot="$(arm64_sysroot python python3-minimal libpython3-stdlib)"
arm64_python=(qemu-aarch64 -L "$sysroot" "$sysroot/usr/bin/python3")
arm64_version="$(readlink "$sysroot/usr/bin/python3" | sed 's/^python//')"
python3 -m pip install -q --disable-pip-version-check --target "$work/arm64-site" \
    --platform manylinux_2_17_aarch64 --implementation cp --python-version "$arm64_version" \
    --only-binary=:all: "${wheels[aarch64]}" "$httpx_pin"
smoke="$(PYTHONPATH="$work/arm64-site" "${arm64_python[@]}" bindings/python/release_smoke.py aarch64 \
    --server "$server_url" "${transcripts[@]}")"
echo "aarch64 wheel, $(file -b "$sysroot/usr/bin/python$arm64_version" | cut -d, -f2 | sed 's/^ //') python$arm64_version under qemu-aarch64: $smoke"
checks[aarch64]+=", arm64 CPython $arm64_version under qemu: import, ${#transcripts[@]} transcripts, e2e"

echo
for artifact in "$sdist" "${wheels[x86_64]}" "${wheels[aarch64]}"; do
    case "$artifact" in
        *x86_64.whl) kind=x86_64; platform="manylinux_2_17_x86_64" ;;
        *aarch64.whl) kind=aarch64; platform="manylinux_2_17_aarch64" ;;
        *) kind=sdist; platform="sdist" ;;
    esac
    printf '%-72s %5s KiB  %-22s %s\n' "${artifact##*/}" "$(($(stat -c %s "$artifact") / 1024))" \
        "$platform" "${checks[$kind]}"
done
