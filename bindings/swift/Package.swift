// swift-tools-version:5.9
// reauth for Swift (iOS, macOS): the UniFFI bindings of the Rust core and a URLSession
// adapter. The native library comes as build/ReauthFFI.xcframework, built on a Mac by
// build-xcframework.sh. Generated and drift-checked on Linux CI; compiled and tested only
// where a Swift toolchain exists.
import PackageDescription

let package = Package(
    name: "Reauth",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Reauth", targets: ["Reauth"]),
    ],
    targets: [
        .binaryTarget(name: "ReauthFFI", path: "build/ReauthFFI.xcframework"),
        .target(name: "Reauth", dependencies: ["ReauthFFI"], path: "Sources/Reauth"),
        .testTarget(name: "ReauthTests", dependencies: ["Reauth"], path: "Tests/ReauthTests"),
    ]
)
