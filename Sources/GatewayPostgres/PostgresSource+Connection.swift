import Dispatch
import Foundation
import GatewayCore
import GatewaySnapshot
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO

/// Connections to the platform's database: configuration from the settings (TLS, credentials),
/// opening and closing, error descriptions, and the `check` probe.
extension PostgresSource {
  static func configuration(_ s: Settings) throws -> PostgresConnection.Configuration {
    guard let u = URLComponents(string: s.url), let host = u.host, !host.isEmpty else {
      throw Failure(description: "snapshot.postgres.url is not a postgres://user@host:port/database URL")
    }
    let database = u.path.hasPrefix("/") ? String(u.path.dropFirst()) : u.path
    let tls: PostgresConnection.Configuration.TLS
    if s.tls == "disable" {
      tls = .disable
    } else {
      var t = TLSConfiguration.makeClientConfiguration()
      if let ca = s.caFile {
        t.trustRoots = .file(ca)
      } else {
        // libpq's prefer/require: encrypted, not verified (set ca_file to verify the server).
        t.certificateVerification = .none
      }
      let context = try NIOSSLContext(configuration: t)
      tls = s.tls == "require" ? .require(context) : .prefer(context)
    }
    var c = PostgresConnection.Configuration(
      host: host, port: u.port ?? 5432, username: u.user ?? "postgres", password: s.password ?? u.password,
      database: database.isEmpty ? nil : database, tls: tls)
    c.options.connectTimeout = .seconds(5)
    return c
  }

  static let connectionIDs = NIOLockedValueBoxLite(0)

  func connect() async throws -> PostgresConnection {
    let id = Self.connectionIDs.withValue { v -> Int in
      v += 1
      return v
    }
    var quiet = logger
    quiet.logLevel = .error
    let conn = try await PostgresConnection.connect(on: group.next(), configuration: Self.configuration(settings), id: id, logger: quiet)
    // The gateway's queries are a streamed scan and lookups by id. JIT compilation only ever adds
    // to them, and a planner with stale statistics JIT-compiles a one-row re-read (~90 ms measured
    // at a million shops, against 0.1 ms), which is the commit-to-served lag. Servers before 11
    // have no such setting; the error leaves the connection usable.
    _ = try? await conn.query("SET jit = off", logger: quiet)
    return conn
  }

  var schema: String { "\"\(settings.schema)\"" }

  /// Closes and waits (a connection released unclosed is a programming error in PostgresNIO).
  static func close(_ conn: PostgresConnection) async {
    let done: EventLoopFuture<Void> = conn.close()
    try? await done.get()
  }

  static func describe(_ error: Error) -> String {
    if let e = error as? PSQLError {
      if let m = e.serverInfo?[.message] { return "\(e.code): \(m)" }
      if let u = e.underlying { return "\(e.code): \(u)" }
      return "\(e.code)"
    }
    return "\(error)"
  }

  /// `tenant-gateway check`: connect, read both views, report.
  public static func probe(_ settings: Settings, platform: PlatformHosts, logger: Logger) async -> Result<FullRead, Failure> {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let source = PostgresSource(
      settings: settings, store: SnapshotStore(), platform: platform, stateDirectory: NSTemporaryDirectory(), group: group, logger: logger)
    let result: Result<FullRead, Failure>
    do {
      let conn = try await source.connect()
      do {
        result = .success(try await source.readAll(conn))
      } catch {
        result = .failure(Failure(description: "\(settings.displayName): \(describe(error))"))
      }
      await close(conn)
    } catch {
      result = .failure(Failure(description: "\(settings.displayName): \(describe(error))"))
    }
    try? await group.shutdownGracefully()
    return result
  }
}
