// swift-tools-version: 6.1
// Reading a CSV table: Backprop's Table against the two maintained Swift CSV packages, on the same file.
// Run from this folder:  swift run -c release CSVReaders FILE.csv   (Scripts/compare_tables.py does it for you)
import Foundation
import PackageDescription

// The root package is a path dependency; its identity is the name of the folder it was cloned into.
let rootIdentity = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "CSVReaders",
    dependencies: [
        .package(path: "../.."),
        .package(url: "https://github.com/yaslab/CSV.swift", exact: "2.5.2"),
        .package(url: "https://github.com/swiftcsv/SwiftCSV", exact: "0.10.0"),
    ],
    targets: [
        .executableTarget(
            name: "CSVReaders",
            dependencies: [
                .product(name: "Backprop", package: rootIdentity),
                .product(name: "CSV", package: "CSV.swift"),
                .product(name: "SwiftCSV", package: "SwiftCSV"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
