// swift-tools-version: 6.1
// A user's own layer (a learnable per-feature scale): trained, saved, and loaded in a fresh process.
//   swift run --package-path Examples/CustomLayer CustomLayer train /tmp/scale.safetensors
//   swift run --package-path Examples/CustomLayer CustomLayer check /tmp/scale.safetensors
import Foundation
import PackageDescription

// The dependency's identity is the name of the folder Backprop was cloned into.
let backprop = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "CustomLayer",
    dependencies: [.package(path: "../..")],
    targets: [
        .executableTarget(name: "CustomLayer", dependencies: [.product(name: "Backprop", package: backprop)]),
    ],
    swiftLanguageModes: [.v6]
)
