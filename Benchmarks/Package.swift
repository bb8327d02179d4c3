// swift-tools-version: 6.1
// Benchmarks for Backprop, in a package of their own so that the root build stays fast.
// Run from this folder:  swift package benchmark            (see README.md here)
import Foundation
import PackageDescription

// The root package is a path dependency; its identity is the name of the folder it was cloned into.
let rootIdentity = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "BackpropBenchmarks",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "TrainingBenchmarks",
            dependencies: [
                .product(name: "Backprop", package: rootIdentity),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/TrainingBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
