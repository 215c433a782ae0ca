#!/usr/bin/env bash
# The Maven Central bundle of the Kotlin package, built, signed and checked:
#
#   bindings/kotlin/release.sh OUT_DIR -Dreauth.home=URL [MAVEN_ARGS…]
#
# One Maven run, `clean verify -Prelease` (pom.xml: the native libraries for every
# platform, the bindings, compile, the JUnit tests, Dokka, the sources and javadoc jars,
# the published POM, the .asc signatures), then OUT_DIR/reauth-VERSION-bundle.zip: the
# files in the repository layout (dev/reauth/reauth/VERSION/…) with .md5, .sha1, .sha256
# and .sha512 beside each, Central Portal's upload format. validate-bundle.py then checks
# the zip against Central's published requirements (every POM element it requires,
# every file signed — each .asc verified by gpg — and checksummed, the sources and
# javadoc jars, …) and prints one line per file.
#
# The key: by default a throwaway one, made for this run in a temporary GNUPGHOME that is
# removed at exit (nothing of it is left in the repository or target/). To sign for real,
# REAUTH_SIGNING_KEY=KEYID uses that key from the caller's GNUPGHOME, and an
# -Dreauth.home on an .invalid host is refused. The Dokka HTML stays in
# bindings/kotlin/target/dokka (index.html), Maven's output in
# bindings/kotlin/target/release-maven.log (printed on a failure).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: bindings/kotlin/release.sh OUT_DIR -Dreauth.home=URL [MAVEN_ARGS…]" >&2; exit 2; }
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$1"
out="$(cd "$1" && pwd)"
shift
home=""
for arg in "$@"; do
    case "$arg" in -Dreauth.home=*) home="${arg#-Dreauth.home=}" ;; esac
done
# The POM's enforcer says the same; this says it before `clean` empties target/.
if [[ ! "$home" =~ ^https://[^[:space:]]+$ ]]; then
    echo "release.sh: -Dreauth.home=https://… is required: a release POM needs the project's home page for its url and scm" \
        "(Maven Central requires both), and the project has none yet (scripts/release's dry run passes https://reauth.invalid/)" >&2
    exit 2
fi

work="$(mktemp -d)"
cleanup() {
    [ -z "${GNUPGHOME:-}" ] || [ -n "${REAUTH_SIGNING_KEY:-}" ] || gpgconf --kill all > /dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
if [ -n "${REAUTH_SIGNING_KEY:-}" ]; then
    if [[ "$home" =~ ^[a-z]+://([^/:]*\.)?invalid(\.)?([:/]|$) ]]; then
        echo "release.sh: reauth.home '$home' is an .invalid placeholder: a real release needs the project's home" >&2
        exit 2
    fi
    key="$REAUTH_SIGNING_KEY"
else
    export GNUPGHOME="$work/gnupg"
    mkdir -m 700 "$GNUPGHOME"
    gpg --batch --quiet --passphrase '' --quick-gen-key \
        "reauth release check (throwaway) <release-check@reauth.invalid>" ed25519 sign 1d 2> /dev/null
    key="$(gpg --batch --with-colons --list-secret-keys 2> /dev/null | sed -n 's/^fpr:*\([0-9A-F]*\):$/\1/p' | head -n 1)"
fi

log="$here/target/release-maven.log"
if ! mvn -B -Dstyle.color=never --no-transfer-progress -f "$here/pom.xml" -Prelease \
    -Dgpg.keyname="$key" "$@" clean verify > "$work/maven.log" 2>&1; then
    mkdir -p "$here/target" && cp "$work/maven.log" "$log"
    cat "$log"
    echo "release.sh: the Maven release build failed (log: $log)" >&2
    exit 1
fi
cp "$work/maven.log" "$log"

# The repository layout, from the POM Maven signed (the flattened one).
target="$here/target"
pom="$target/.flattened-pom.xml"
read -r group artifact version < <(python3 - "$pom" <<'EOF'
import sys, xml.etree.ElementTree as ET
ns = {"m": "http://maven.apache.org/POM/4.0.0"}
root = ET.parse(sys.argv[1]).getroot()
print(*(root.findtext(f"m:{k}", namespaces=ns) for k in ("groupId", "artifactId", "version")))
EOF
)
stage="$work/bundle"
dest="$stage/${group//.//}/$artifact/$version"
mkdir -p "$dest"
name="$artifact-$version"
cp "$pom" "$dest/$name.pom"
cp "$target/$name.pom.asc" "$dest/$name.pom.asc"
for file in "$name.jar" "$name-sources.jar" "$name-javadoc.jar"; do
    cp "$target/$file" "$target/$file.asc" "$dest/"
done
for file in "$dest"/*; do
    case "$file" in *.asc) continue ;; esac
    for sum in md5 sha1 sha256 sha512; do
        "${sum}sum" "$file" | cut -d' ' -f1 > "$file.$sum"
    done
done
bundle="$out/$name-bundle.zip"
rm -f "$bundle"
(cd "$stage" && find . -type f | sed 's|^\./||' | sort | python3 -c '
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for line in sys.stdin:
        z.write(line.strip())
' "$bundle")
python3 "$here/validate-bundle.py" "$bundle"
if [ -z "${REAUTH_SIGNING_KEY:-}" ]; then
    # The check's own check, with the throwaway key: broken bundles must be refused.
    python3 "$here/validate-bundle-mutants.py" "$bundle" "$key"
fi
