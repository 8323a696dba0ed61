import Dispatch
import GatewayServer
import GatewaySnapshot
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

// `serve` runs as a swift-service-lifecycle ServiceGroup (PRODUCT.md §8):
//
//   [SnapshotSourceService, ReloadOnHangup, GatewayService]
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
  var description: String { "GatewayService" }

  func run() async throws {
    do {
      try await gracefulShutdown()
    } catch {
      // Cancelled before any graceful shutdown: SIGINT, or another service failed.
      logger.info("stopping")
      await shutdown()
      return
    }
    logger.info("stopping gracefully", metadata: ["signal": "SIGTERM"])
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

/// `SIGHUP` reloads the snapshot (and the signing keys) until the graceful shutdown.
struct ReloadOnHangup: Service, CustomStringConvertible {
  let server: GatewayServer
  var description: String { "ReloadOnHangup" }

  func run() async throws {
    for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
      _ = server.reload()  // runs on the reload thread pool; overlapping reloads are coalesced
    }
  }
}

/// The snapshot's background source (file watcher or control-plane poller), stopped last.
struct SnapshotSourceService: Service, CustomStringConvertible {
  let watcher: SnapshotFileWatcher?
  let urlSource: SnapshotURLSource?
  var description: String { "SnapshotSourceService" }

  func run() async throws {
    watcher?.start()
    urlSource?.start()
    try? await gracefulShutdown()
    watcher?.stop()
    urlSource?.stop()
  }
}
