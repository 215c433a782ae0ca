#!/usr/bin/env bash
# Builds build/ReauthFFI.xcframework (static libraries for iOS devices, the iOS simulator
# and macOS, with Generated/ReauthFFI.h and its module map) — on a Mac with Xcode and
# rustup. Then `swift build` and `swift test` in this folder use it.
#
#   bindings/swift/build-xcframework.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bindings="$(dirname "$here")"
target="$bindings/../target/bindings"
[ "$(uname)" = "Darwin" ] || { echo "build-xcframework.sh needs macOS with Xcode" >&2; exit 2; }

"$here/generate.sh" --check # the Swift sources must match the library being built

targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)
rustup target add "${targets[@]}"
for t in "${targets[@]}"; do
    (cd "$bindings" && cargo build --release --locked -p reauth-uniffi --target "$t")
done

lib=libreauth_uniffi.a
out="$here/build"
rm -rf "$out" && mkdir -p "$out/ios-sim" "$out/macos" "$out/headers"
lipo -create "$target/aarch64-apple-ios-sim/release/$lib" "$target/x86_64-apple-ios/release/$lib" \
    -output "$out/ios-sim/$lib"
lipo -create "$target/aarch64-apple-darwin/release/$lib" "$target/x86_64-apple-darwin/release/$lib" \
    -output "$out/macos/$lib"
cp "$here/Generated/ReauthFFI.h" "$here/Generated/module.modulemap" "$out/headers/"

xcodebuild -create-xcframework \
    -library "$target/aarch64-apple-ios/release/$lib" -headers "$out/headers" \
    -library "$out/ios-sim/$lib" -headers "$out/headers" \
    -library "$out/macos/$lib" -headers "$out/headers" \
    -output "$out/ReauthFFI.xcframework"
echo "built $out/ReauthFFI.xcframework; now: swift test"
