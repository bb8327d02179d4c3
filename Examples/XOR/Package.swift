// swift-tools-version: 6.1
// A user's project: depends on Backprop by path and trains XOR.  swift run --package-path Examples/XOR
import Foundation
import PackageDescription

// The dependency's identity is the name of the folder Backprop was cloned into.
let backprop = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "XOR",
    dependencies: [.package(path: "../..")],
    targets: [
        .executableTarget(name: "XOR", dependencies: [.product(name: "Backprop", package: backprop)]),
    ],
    swiftLanguageModes: [.v6]
)
