#!/usr/bin/env bash
# The jar runs on a machine with only a JDK: copies it and its runtime dependencies to
# an empty directory and runs jar-check/Check.java there from Java, with an empty
# environment (no cargo on PATH, no library path, no target/ nearby). Then:
# - the platforms the jar states (manifest Reauth-Native-Platforms) are the ones its
#   list (dev/reauth/native.properties) names and the libraries it holds;
# - on a platform the jar lacks (a copy without this platform's library and list entry)
#   the first call fails with the error that names the platform and what to do, and
#   -Djna.library.path with the library built for it still serves;
# - with --arm64, Check runs again on a Linux arm64 JVM under qemu-user (check-arm64.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
arm64=0
[ "${1:-}" = --arm64 ] && arm64=1
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
mvn -B -q -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$here/target/runtime-deps" > "$dir/mvn.log" 2>&1 \
    || { cat "$dir/mvn.log" >&2; exit 1; }
rm "$dir/mvn.log"
jar="$(find "$here/target" -maxdepth 1 -name 'reauth-*.jar' ! -name '*-sources.jar' ! -name '*-javadoc.jar')"
[ "$(wc -l <<< "$jar")" -eq 1 ] && [ -n "$jar" ] || { echo "check-jar.sh: not one jar in target/: $jar" >&2; exit 1; }

# What the jar states, what it lists, what it holds.
stated="$(unzip -p "$jar" META-INF/MANIFEST.MF | tr -d '\r' | sed -n 's/^Reauth-Native-Platforms: //p')"
listed="$(unzip -p "$jar" dev/reauth/native.properties | sed -n 's/^platforms=//p')"
held="$(unzip -Z1 "$jar" | sed -n 's|^\([^/]*\)/libreauth_uniffi\.so$|\1|p' | sort | tr '\n' ' ' | sed 's/ $//')"
sorted() { tr ' ' '\n' <<< "$1" | sort | tr '\n' ' ' | sed 's/ $//'; }
if [ -z "$stated" ] || [ "$(sorted "$stated")" != "$held" ] || [ "$(sorted "$listed")" != "$held" ]; then
    echo "check-jar.sh: $(basename "$jar") states '$stated' (manifest), lists '$listed' (native.properties), holds '$held'" >&2
    exit 1
fi
echo "jar platforms: Reauth-Native-Platforms: $stated (= its list = the libraries it holds)"

mkdir "$dir/app" "$dir/lacking" "$dir/override"
cp "$jar" "$here"/target/runtime-deps/*.jar "$here/jar-check/Check.java" "$dir/app"/
java_home="$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")"
run() { # DIR [JAVA_ARGS…]: Check from DIR's jars, with only a JDK
    local d="$1"; shift
    (cd "$d" && env -i PATH="$java_home/bin:/usr/bin:/bin" HOME="$d" java -cp "*:$dir/app" "$@" Check)
}
(cd "$dir/app" && env -i PATH="$java_home/bin:/usr/bin:/bin" HOME="$dir" javac -cp "*" Check.java)
out="$(run "$dir/app")"
echo "$out"

# A platform the jar lacks: this one, from a copy without its library and list entry.
platform="$(sed -n 's/^jar check (\([^,]*\),.*/\1/p' <<< "$out")"
cp "$here"/target/runtime-deps/*.jar "$dir/lacking"/
lacking="$dir/lacking/$(basename "$jar")"
cp "$jar" "$lacking"
others="$(sed "s/\b$platform\b//; s/  */ /g; s/^ //; s/ $//" <<< "$listed")"
mkdir -p "$dir/edit/dev/reauth"
unzip -p "$jar" dev/reauth/native.properties | sed "s/^platforms=.*/platforms=$others/" > "$dir/edit/dev/reauth/native.properties"
zip -q -d "$lacking" "$platform/*"
(cd "$dir/edit" && zip -q "$lacking" dev/reauth/native.properties)
rm "$dir/app/Check.java"
if run "$dir/lacking" > "$dir/lacking.out" 2>&1; then
    echo "check-jar.sh: a jar without $platform ran on $platform" >&2; exit 1
fi
for words in "NativeLibraryError" "not for $platform" "carries its native library for ${others// /, }" \
    "cargo build --release -p reauth-uniffi" "-Djna.library.path="; do
    grep -qF -- "$words" "$dir/lacking.out" \
        || { echo "check-jar.sh: the error on a platform the jar lacks does not say '$words':" >&2; cat "$dir/lacking.out" >&2; exit 1; }
done
echo "jar without $platform: $(grep -m1 -o 'reauth: this jar carries[^(]*' "$dir/lacking.out")(…build it with cargo, -Djna.library.path): ok"
cp "$here/../../target/native/$platform/libreauth_uniffi.so" "$dir/override/"
run "$dir/lacking" -Djna.library.path="$dir/override" | sed "s/^jar check/jar without $platform, -Djna.library.path=DIR/"

if [ "$arm64" = 1 ]; then
    "$here/check-arm64.sh" "$dir/app"
fi
