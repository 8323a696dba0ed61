// swift-tools-version:6.1
import PackageDescription

// Warnings are errors in CI (scripts/build.sh passes -warnings-as-errors); locally they stay warnings
// so a half-finished edit still builds.
let package = Package(
  name: "tenant-gateway",
  platforms: [.macOS(.v14)],
  products: [
    .executable(name: "tenant-gateway", targets: ["tenant-gateway"])
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
    .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
    .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
    .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
    .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
    .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
    .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
  ],
  targets: [
    // Pure, I/O-free: host normalisation, tenant table, resolver, refusals. No NIO.
    .target(
      name: "GatewayCore",
      dependencies: [.product(name: "Crypto", package: "swift-crypto")]
    ),
    // gateway.conf: typed, validated configuration with environment and --set overrides.
    .target(
      name: "GatewayConfig",
      dependencies: ["GatewayCore", .product(name: "Yams", package: "Yams")]
    ),
    // Snapshot document, validation, table builder, store (atomic swap), reload.
    .target(
      name: "GatewaySnapshot",
      dependencies: [
        "GatewayCore",
        .product(name: "Atomics", package: "swift-atomics"),
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    // X-Tenant JWT signer and key ring.
    .target(
      name: "GatewaySigning",
      dependencies: ["GatewayCore", .product(name: "Crypto", package: "swift-crypto")]
    ),
    // Upstream connection pools, request encoding, response streaming, timeouts.
    .target(
      name: "GatewayUpstream",
      dependencies: [
        "GatewayCore",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
      ]
    ),
    // Counters and the admin listener.
    .target(
      name: "GatewayObservability",
      dependencies: [
        "GatewayCore", "GatewaySnapshot",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    // NIO bootstrap, TLS with SNI, HTTP/1 + HTTP/2 pipelines and the per-request exchange.
    .target(
      name: "GatewayServer",
      dependencies: [
        "GatewayCore", "GatewayConfig", "GatewaySnapshot", "GatewaySigning", "GatewayUpstream",
        "GatewayObservability",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOTLS", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "NIOHTTP2", package: "swift-nio-http2"),
        .product(name: "NIOHPACK", package: "swift-nio-http2"),
        .product(name: "X509", package: "swift-certificates"),
        .product(name: "SwiftASN1", package: "swift-asn1"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    .executableTarget(
      name: "tenant-gateway",
      dependencies: [
        "GatewayCore", "GatewayConfig", "GatewaySnapshot", "GatewaySigning", "GatewayServer",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "Crypto", package: "swift-crypto"),
      ]
    ),
    .testTarget(name: "GatewayCoreTests", dependencies: ["GatewayCore"]),
    .testTarget(name: "GatewayConfigTests", dependencies: ["GatewayConfig"]),
    .testTarget(name: "GatewaySnapshotTests", dependencies: ["GatewaySnapshot"]),
    .testTarget(
      name: "GatewaySigningTests",
      dependencies: ["GatewaySigning", .product(name: "JWTKit", package: "jwt-kit")]
    ),
    .testTarget(
      name: "GatewayServerTests",
      dependencies: [
        "GatewayServer",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOEmbedded", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
      ]
    ),
    // Starts the real tenant-gateway binary and speaks to it with curl, nghttp, Python h2 and PyJWT.
    .testTarget(
      name: "GatewayIntegrationTests",
      dependencies: ["tenant-gateway"],
      resources: [.copy("clients")]
    ),
  ]
)
