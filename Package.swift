// swift-tools-version:6.1
import PackageDescription

import class Foundation.ProcessInfo

/// Our own targets build with warnings as errors when TGW_WARNINGS_AS_ERRORS is set (CI does);
/// dependencies are unaffected.
let strict: [SwiftSetting] =
  (ProcessInfo.processInfo.environment["TGW_WARNINGS_AS_ERRORS"] != nil ? [.unsafeFlags(["-warnings-as-errors"])] : [])
  // Release builds skip dynamic exclusivity checks (swift_beginAccess was ~2 % of a loaded
  // gateway's profile); debug builds, which the tests run, keep them.
  + [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
  name: "tenant-gateway",
  platforms: [.macOS(.v14)],
  products: [
    .executable(name: "tenant-gateway", targets: ["tenant-gateway"]),
    // Libraries for the packages in Benchmarks/ and Fuzz/ (not a public API).
    .library(name: "GatewayCore", targets: ["GatewayCore"]),
    .library(name: "GatewaySigning", targets: ["GatewaySigning"]),
    .library(name: "GatewaySnapshot", targets: ["GatewaySnapshot"]),
    .library(name: "GatewayObservability", targets: ["GatewayObservability"]),
    // For the libFuzzer targets in Fuzz/ (request-head validation).
    .library(name: "GatewayServer", targets: ["GatewayServer"]),
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
    .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
    .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
  ],
  targets: [
    // Pure, I/O-free: host normalisation, tenant table, resolver, refusals. No NIO.
    .target(
      name: "GatewayCore",
      dependencies: [.product(name: "Crypto", package: "swift-crypto")],
      swiftSettings: strict
    ),
    // gateway.conf: typed, validated configuration with environment and --set overrides.
    .target(
      name: "GatewayConfig",
      dependencies: ["GatewayCore", .product(name: "Yams", package: "Yams")],
      swiftSettings: strict
    ),
    // Snapshot document, validation, table builder, store (atomic swap), reload.
    .target(
      name: "GatewaySnapshot",
      dependencies: [
        "GatewayCore",
        .product(name: "Atomics", package: "swift-atomics"),
        .product(name: "Logging", package: "swift-log"),
        // The URL source (a control plane polled with ETag) fetches over HTTP(S).
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
      ],
      swiftSettings: strict
    ),
    // X-Tenant JWT signer and key ring.
    .target(
      name: "GatewaySigning",
      dependencies: ["GatewayCore", .product(name: "Crypto", package: "swift-crypto")],
      swiftSettings: strict
    ),
    // Upstream connection pools, request encoding, response streaming, timeouts.
    .target(
      name: "GatewayUpstream",
      dependencies: [
        "GatewayCore",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "Atomics", package: "swift-atomics"),
      ],
      swiftSettings: strict
    ),
    // The PostgreSQL source (PRODUCT.md §6): the platform's own rows, followed through LISTEN and an outbox.
    .target(
      name: "GatewayPostgres",
      dependencies: [
        "GatewayCore", "GatewaySnapshot", "GatewayACME",
        .product(name: "PostgresNIO", package: "postgres-nio"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: strict
    ),
    // ACME (RFC 8555) for custom domains: JWS, the order and renewal state machines, the
    // tls-alpn-01 certificate, the CSR, storage; and the small driver that carries them out.
    .target(
      name: "GatewayACME",
      dependencies: [
        "GatewayCore", "GatewaySigning",
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "X509", package: "swift-certificates"),
        .product(name: "SwiftASN1", package: "swift-asn1"),
        // The driver's HTTP(S) exchanges with the CA (ACMEHTTP).
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
      ],
      swiftSettings: strict
    ),
    // Counters and the admin listener.
    .target(
      name: "GatewayObservability",
      dependencies: [
        "GatewayCore", "GatewaySnapshot",
        .product(name: "Atomics", package: "swift-atomics"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: strict
    ),
    // NIO bootstrap, TLS with SNI, HTTP/1 + HTTP/2 pipelines and the per-request exchange.
    .target(
      name: "GatewayServer",
      dependencies: [
        "GatewayCore", "GatewayConfig", "GatewaySnapshot", "GatewaySigning", "GatewayUpstream",
        "GatewayObservability", "GatewayACME",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOTLS", package: "swift-nio"),
        .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "NIOHTTP2", package: "swift-nio-http2"),
        .product(name: "NIOHPACK", package: "swift-nio-http2"),
        .product(name: "X509", package: "swift-certificates"),
        .product(name: "SwiftASN1", package: "swift-asn1"),
        .product(name: "Atomics", package: "swift-atomics"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: strict
    ),
    .executableTarget(
      name: "tenant-gateway",
      dependencies: [
        "GatewayCore", "GatewayConfig", "GatewaySnapshot", "GatewaySigning", "GatewayServer", "GatewayObservability",
        "GatewayPostgres", "GatewayACME",
        .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOWebSocket", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "Crypto", package: "swift-crypto"),
      ],
      swiftSettings: strict
    ),
    .testTarget(name: "GatewayCoreTests", dependencies: ["GatewayCore"], swiftSettings: strict),
    .testTarget(name: "GatewayConfigTests", dependencies: ["GatewayConfig"], swiftSettings: strict),
    .testTarget(
      name: "GatewayACMETests",
      dependencies: [
        "GatewayACME", "GatewaySigning",
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "X509", package: "swift-certificates"),
        .product(name: "SwiftASN1", package: "swift-asn1"),
      ],
      swiftSettings: strict
    ),
    .testTarget(name: "GatewaySnapshotTests", dependencies: ["GatewaySnapshot"], swiftSettings: strict),
    .testTarget(name: "GatewayUpstreamTests", dependencies: ["GatewayUpstream"], swiftSettings: strict),
    .testTarget(
      name: "GatewaySigningTests",
      dependencies: [
        "GatewaySigning", "GatewayCore", .product(name: "Crypto", package: "swift-crypto"), .product(name: "JWTKit", package: "jwt-kit"),
      ],
      swiftSettings: strict
    ),
    .testTarget(
      name: "GatewayServerTests",
      dependencies: [
        "GatewayServer", "GatewayUpstream", "GatewayConfig", "GatewayCore", "GatewaySigning",
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOEmbedded", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOHPACK", package: "swift-nio-http2"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
      ],
      swiftSettings: strict
    ),
    // Starts the real tenant-gateway binary and speaks to it with curl, nghttp, Python h2 and PyJWT.
    .testTarget(
      name: "GatewayIntegrationTests",
      dependencies: ["tenant-gateway"],
      exclude: ["clients"],
      swiftSettings: strict
    ),
  ]
)
