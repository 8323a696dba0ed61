// swift-tools-version:6.1
import PackageDescription

import struct Foundation.URL

/// The gateway package is a path dependency; its identity is its directory's name (see Benchmarks/).
let gateway = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent.lowercased()

// libFuzzer targets, kept out of the main package (they need `--sanitize fuzzer`).
// Build and run: scripts/fuzz.sh TARGET SECONDS (or scripts/fuzz.sh all SECONDS).
// Each target is a library-mode executable exporting LLVMFuzzerTestOneInput; libFuzzer provides main.
func fuzzTarget(_ name: String, _ products: [String], testable: Bool = false) -> Target {
  .executableTarget(
    name: name,
    dependencies: products.map { .product(name: $0, package: $0.hasPrefix("NIO") ? "swift-nio" : gateway) },
    swiftSettings: [.unsafeFlags(["-parse-as-library"])])
}

let package = Package(
  name: "tenant-gateway-fuzz",
  platforms: [.macOS(.v14)],
  dependencies: [
    .package(path: ".."),
    .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
  ],
  targets: [
    fuzzTarget("FuzzHostName", ["GatewayCore"]),
    fuzzTarget("FuzzOrigin", ["GatewayCore"]),
    fuzzTarget("FuzzCookie", ["GatewayCore"]),
    fuzzTarget("FuzzSnapshot", ["GatewayCore", "GatewaySnapshot"]),
    fuzzTarget("FuzzRequestPath", ["GatewayCore"]),
    fuzzTarget("FuzzProxyHeader", ["GatewayCore"]),
    fuzzTarget("FuzzRequestHead", ["GatewayCore", "GatewayServer", "NIOCore", "NIOEmbedded", "NIOHTTP1"]),
  ]
)
