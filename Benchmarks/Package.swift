// swift-tools-version:6.1
import PackageDescription

import struct Foundation.URL

/// The gateway package is a path dependency; its identity is its directory's name, which differs
/// between clones (main, ci-check, ...), so it is computed here.
let gateway = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent.lowercased()

// Micro-benchmarks (ordo-one/benchmark), kept out of the main package so CI's test build does not
// compile the benchmark stack. Run: `cd Benchmarks && swift package benchmark`.
let package = Package(
  name: "tenant-gateway-benchmarks",
  platforms: [.macOS(.v14)],
  dependencies: [
    .package(path: ".."),
    .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
    .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
    .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
    .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
  ],
  targets: [
    .executableTarget(
      name: "GatewayBenchmarks",
      dependencies: [
        .product(name: "Benchmark", package: "benchmark"),
        .product(name: "GatewayCore", package: gateway),
        .product(name: "GatewaySigning", package: gateway),
        .product(name: "JWTKit", package: "jwt-kit"),
        .product(name: "Crypto", package: "swift-crypto"),
      ],
      path: "Benchmarks/GatewayBenchmarks",
      plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    ),
    // Hot-path metrics recording: per-loop counters vs swift-metrics + swift-prometheus.
    .executableTarget(
      name: "MetricsBenchmarks",
      dependencies: [
        .product(name: "Benchmark", package: "benchmark"),
        .product(name: "GatewayObservability", package: gateway),
        .product(name: "CoreMetrics", package: "swift-metrics"),
        .product(name: "Prometheus", package: "swift-prometheus"),
      ],
      path: "Benchmarks/MetricsBenchmarks",
      plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    ),
  ]
)
