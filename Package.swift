// swift-tools-version: 6.2
import PackageDescription

let package = Package(
    name: "Backprop",
    products: [
        // MARK: - Public products
        .library(name: "Backprop", targets: ["Backprop"]),
        .library(name: "BackpropMPI", targets: ["BackpropMPI"]),  // data-parallel training over MPI
        .executable(name: "backprop", targets: ["BackpropCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        // MARK: - System libraries (no stable API; see Modules/CBLAS/README.md)
        .systemLibrary(
            name: "CBLAS",
            path: "Modules/CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]
        ),
        .systemLibrary(
            name: "CMPI",
            path: "Modules/CMPI",
            pkgConfig: "mpi-c",
            providers: [.apt(["libopenmpi-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            path: "Modules/CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),

        // MARK: - Implementation
        .target(
            name: "CSIMD"  // element-wise kernels compiled per ISA, prefetch, packed square root; no stable API
        ),
        .target(
            name: "CBackpropSignals"  // async-signal-safe removal of a temporary file on SIGINT/SIGTERM; no stable API
        ),
        .target(
            name: "Backprop",
            dependencies: ["CBLAS", "CZlib", "CSIMD", "CBackpropSignals"]
        ),
        .target(
            name: "BackpropMPI",
            dependencies: ["Backprop", "CMPI"]
        ),
        .executableTarget(
            name: "BackpropCLI",
            dependencies: [
                "Backprop",
                "CBackpropSignals",
                "BackpropMPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // MARK: - Tests
        .target(
            name: "BackpropTestSupport",  // helpers for the test targets: tolerances, random data, temporary folders
            dependencies: ["Backprop", "CZlib"],
            path: "Tests/BackpropTestSupport"
        ),
        .testTarget(
            name: "BackpropTests",
            dependencies: ["Backprop", "BackpropTestSupport", "CZlib", "CSIMD"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
