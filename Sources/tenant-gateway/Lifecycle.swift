import Dispatch
import Foundation
import GatewayServer
import GatewayPostgres
import GatewaySnapshot
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

// `serve` runs as a swift-service-lifecycle ServiceGroup (PRODUCT.md §8):
//
//   [SnapshotSourceService, SignalActions, GatewayService]
//
// SIGTERM starts a graceful shutdown, which ServiceGroup delivers in reverse order: the gateway
// drains first (while the snapshot sources keep the table current), then the SIGHUP listener and
// the snapshot sources stop. SIGINT cancels the group: everything stops at once.

/// The gateway's listeners: open until a graceful shutdown, then a drain (`limits.drain_timeout_s`).
///
/// The listeners are opened before the group runs (`GatewayServer.start()`), so a bind error exits
/// non-zero before any signal handling is installed. A second SIGTERM during the drain, or a
/// cancellation (SIGINT), cuts the drain short.
struct GatewayService: Service, CustomStringConvertible {
  let server: GatewayServer
  let drainTimeout: TimeAmount
  let logger: Logger
  /// The sd_notify readiness message, sent when the service starts: the group has trapped
  /// SIGTERM and SIGINT by then, so a stop sent on readiness drains instead of killing.
  let readiness: String
  var description: String { "GatewayService" }

  func run() async throws {
    SystemdNotify.send(readiness)
    do {
      try await gracefulShutdown()
    } catch {
      // Cancelled before any graceful shutdown: SIGINT, or another service failed.
      logger.info("stopping")
      await shutdown()
      return
    }
    logger.info("stopping gracefully", metadata: ["signal": "SIGTERM"])
    SystemdNotify.send("STOPPING=1")
    let server = self.server
    let drainTimeout = self.drainTimeout
    await withTaskGroup(of: Void.self) { group in
      group.addTask { await server.drain(timeout: drainTimeout) }
      group.addTask {
        // ServiceGroup consumed the first SIGTERM; the next one means "now".
        for await _ in await UnixSignalsSequence(trapping: .sigterm) { return }
      }
      await group.next()
      group.cancelAll()
    }
    await shutdown()
  }

  /// `GatewayServer.shutdown()` blocks until the event loops stop: run it on a Dispatch thread, not
  /// on one of Swift concurrency's few cooperative threads.
  private func shutdown() async {
    let server = self.server
    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
      DispatchQueue.global().async {
        server.shutdown()
        done.resume()
      }
    }
  }
}

/// nginx's signals until the graceful shutdown: `SIGHUP` reloads the snapshot and the signing keys,
/// `SIGUSR1` reopens the access log (logrotate's `postrotate`).
struct SignalActions: Service, CustomStringConvertible {
  let server: GatewayServer
  /// SIGHUP and SIGUSR1, trapped before readiness was announced (see `serve`).
  let signals: UnixSignalsSequence
  var description: String { "SignalActions" }

  func run() async throws {
    for await signal in signals.cancelOnGracefulShutdown() {
      switch signal {
      case .sigusr1:
        server.reopenAccessLog()
      default:
        SystemdNotify.send("RELOADING=1\nMONOTONIC_USEC=\(SystemdNotify.monotonicMicroseconds())")
        server.reload().whenComplete { _ in SystemdNotify.send("READY=1") }  // reloads are coalesced on one thread
      }
    }
  }
}

/// systemd's readiness protocol (`Type=notify`, sd_notify(3)): a datagram to `$NOTIFY_SOCKET`.
/// Without the variable (not under systemd) it does nothing.
enum SystemdNotify {
  static func send(_ state: String) {
    guard let path = ProcessInfo.processInfo.environment["NOTIFY_SOCKET"], !path.isEmpty else { return }
    let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return }
    defer { close(fd) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    // "@name" is an abstract socket: a leading NUL byte.
    var bytes = Array(path.utf8)
    if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
    let capacity = MemoryLayout.size(ofValue: address.sun_path)
    guard bytes.count < capacity else { return }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
      for (i, b) in bytes.enumerated() { raw[i] = b }
    }
    let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
    let message = Array(state.utf8)
    _ = withUnsafePointer(to: &address) { ptr in
      ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
        message.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sa, length) }
      }
    }
  }

  static func monotonicMicroseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
  }
}

/// The snapshot's background source (file watcher or control-plane poller), stopped last.
struct SnapshotSourceService: Service, CustomStringConvertible {
  let changeSource: FileChangeSource?
  let urlSource: SnapshotURLSource?
  let postgres: PostgresSource?
  let pollInterval: Double
  var description: String { "SnapshotSourceService" }

  func run() async throws {
    changeSource?.start(snapshotPollInterval: pollInterval)
    urlSource?.start()
    if let postgres {
      // Follows the database until the graceful shutdown cancels it.
      await withTaskGroup(of: Void.self) { group in
        group.addTask { await postgres.run() }
        try? await gracefulShutdown()
        group.cancelAll()
      }
      // A stop leaves the last-known-good copy and its journal as current as the table.
      postgres.flushPersistence()
    } else {
      try? await gracefulShutdown()
    }
    changeSource?.stop()
    urlSource?.stop()
  }
}
