#!/usr/bin/env bash
# The jar runs on a machine with only a JDK: copies it and its runtime dependencies to
# an empty directory and runs jar-check/Check.java there from Java, with an empty
# environment (no cargo on PATH, no library path, no target/ nearby).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
mvn -B -q -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$here/target/runtime-deps" > "$dir/mvn.log" 2>&1 \
    || { cat "$dir/mvn.log" >&2; exit 1; }
rm "$dir/mvn.log"
cp "$here"/target/reauth-*.jar "$here"/target/runtime-deps/*.jar "$here/jar-check/Check.java" "$dir"/
java_home="$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")"
cd "$dir"
env -i PATH="$java_home/bin:/usr/bin:/bin" HOME="$dir" bash -c 'javac -cp "*" Check.java && java -cp "*:." Check'
