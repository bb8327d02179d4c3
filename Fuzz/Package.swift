// swift-tools-version: 6.1
// libFuzzer targets for Backprop's file readers. Build and run (see README.md here):
//   swift build --package-path Fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
//   Fuzz/.build/debug/FuzzIDX Fuzz/Corpus/idx -max_total_time=600
import Foundation
import PackageDescription

// The root package's identity is the name of the folder it was cloned into.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "BackpropFuzz",
    dependencies: [.package(path: "..")],
    targets: [
        .target(name: "FuzzDriver"),
        .executableTarget(name: "FuzzIDX", dependencies: ["FuzzDriver", .product(name: "Backprop", package: root)]),
        .executableTarget(name: "FuzzCheckpoint", dependencies: ["FuzzDriver", .product(name: "Backprop", package: root)]),
        .executableTarget(name: "FuzzGzip", dependencies: ["FuzzDriver", .product(name: "Backprop", package: root)]),
        .executableTarget(name: "FuzzSafetensorsMetadata", dependencies: ["FuzzDriver", .product(name: "Backprop", package: root)]),
        .executableTarget(name: "FuzzTable", dependencies: ["FuzzDriver", .product(name: "Backprop", package: root)]),
    ],
    swiftLanguageModes: [.v6]
)
