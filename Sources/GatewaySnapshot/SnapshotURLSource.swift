import Foundation
import GatewayCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Polls a control plane for the snapshot (`snapshot.url`, every `snapshot.poll_interval_s`) with
/// `If-None-Match`, so a fleet of gateways follows one document and an unchanged one costs a 304.
///
/// A changed document is streamed to a temp file in `snapshot.state_dir` (never held in memory),
/// parsed and validated there; if accepted it is published and the temp file becomes the
/// last-known-good copy by rename. Failures (network, HTTP status, validation) keep the serving
/// table and back off: interval × 2ⁿ, at most 5 minutes.
public final class SnapshotURLSource: @unchecked Sendable {
  public let url: String
  let interval: Double
  let loader: SnapshotLoader
  let store: SnapshotStore
  let group: EventLoopGroup
  let logger: Logger
  private let queue = DispatchQueue(label: "tenant-gateway.snapshot-url")
  private var etag: String?
  private var failures = 0
  private var stopped = false
  /// Largest document accepted (bytes).
  public static let maxBytes = 4 << 30

  public init(url: String, interval: Double, loader: SnapshotLoader, store: SnapshotStore, group: EventLoopGroup, logger: Logger) {
    self.url = url
    self.interval = interval
    self.loader = loader
    self.store = store
    self.group = group
    self.logger = logger
  }

  /// Fetches once, synchronously (start-up: the caller falls back to last-known-good on failure).
  public func fetchNow() -> Result<TenantTable?, SnapshotError> {
    queue.sync { poll() }
  }

  /// Starts polling in the background.
  public func start() {
    schedule(after: interval)
  }

  public func stop() {
    queue.sync { stopped = true }
  }

  private func schedule(after seconds: Double) {
    queue.asyncAfter(deadline: .now() + seconds) { [weak self] in
      guard let self, !self.stopped else { return }
      let result = self.poll()
      let next: Double
      switch result {
      case .success: next = self.interval
      case .failure: next = min(300, self.interval * pow(2, Double(min(self.failures, 12))))
      }
      self.schedule(after: next)
    }
  }

  /// One poll: 304 → `.success(nil)`; a new accepted document → `.success(table)`.
  private func poll() -> Result<TenantTable?, SnapshotError> {
    let temp = (loader.stateDirectory as NSString).appendingPathComponent("download.\(getpid()).json")
    defer { unlink(temp) }
    do {
      try FileManager.default.createDirectory(atPath: loader.stateDirectory, withIntermediateDirectories: true)
      let response = try HTTPFetch.get(url, ifNoneMatch: etag, to: temp, maxBytes: Self.maxBytes, group: group)
      switch response.status {
      case 304:
        failures = 0
        return .success(nil)
      case 200:
        let table = try SnapshotStreamParser.parse(path: temp, platform: loader.platform)
        // The accepted download becomes the last-known-good copy (rename is atomic).
        let fd = open(temp, O_RDONLY)
        if fd >= 0 {
          fsync(fd)
          close(fd)
        }
        rename(temp, loader.lastKnownGoodPath)
        store.publish(table, source: "url:\(url)")
        etag = response.etag
        failures = 0
        logger.info("snapshot fetched", metadata: ["version": "\(table.version)", "shops": "\(table.shopCount)", "url": "\(url)"])
        return .success(table)
      default:
        throw SnapshotError.unreadable(path: url, reason: "HTTP \(response.status)")
      }
    } catch {
      failures += 1
      let e = (error as? SnapshotError) ?? .unreadable(path: url, reason: "\(error)")
      store.recordFailure(e.messages)
      logger.error("snapshot fetch failed; the serving table stays", metadata: ["url": "\(url)", "error": "\(e)"])
      return .failure(e)
    }
  }
}

/// A minimal HTTP(S) GET that streams the body into a file, for the snapshot URL source.
enum HTTPFetch {
  struct Response {
    var status: Int
    var etag: String?
  }

  struct FetchError: Error, CustomStringConvertible {
    var description: String
  }

  /// Longest silence from the control plane during one fetch (connect excluded).
  static let idleTimeout = TimeAmount.seconds(30)

  static func get(_ url: String, ifNoneMatch: String?, to path: String, maxBytes: Int, group: EventLoopGroup) throws -> Response {
    guard let parts = HTTPURL(url) else { throw FetchError(description: "not an http(s) URL: \(url)") }
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw FetchError(description: "cannot write \(path)") }
    defer { close(fd) }
    let sslContext: NIOSSLContext? = parts.tls ? try NIOSSLContext(configuration: .makeClientConfiguration()) : nil
    let promise = group.next().makePromise(of: Response.self)
    let bootstrap = ClientBootstrap(group: group)
      .connectTimeout(.seconds(10))
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          if let sslContext {
            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: parts.serverName))
          }
          try channel.pipeline.syncOperations.addHTTPClientHandlers()
          // A control plane that accepts and then goes quiet fails the fetch after `idleTimeout`
          // (the next poll retries with backoff) instead of holding reloads for the whole limit.
          try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idleTimeout))
          try channel.pipeline.syncOperations.addHandler(FetchHandler(fd: fd, maxBytes: maxBytes, promise: promise))
        }
      }
    let channel = try bootstrap.connect(host: parts.host, port: parts.port).wait()
    var headers = HTTPHeaders([("Host", parts.hostHeader), ("Accept", "application/json"), ("Connection", "close")])
    if let ifNoneMatch { headers.add(name: "If-None-Match", value: ifNoneMatch) }
    let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: parts.target, headers: headers)
    channel.write(HTTPClientRequestPart.head(head), promise: nil)
    channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    // A slow control plane must not hang reloads forever: closing fails the fetch (once).
    let timeout = channel.eventLoop.scheduleTask(in: .seconds(600)) {
      channel.close(promise: nil)
    }
    defer { timeout.cancel() }
    let response = try promise.futureResult.wait()
    channel.close(promise: nil)
    return response
  }

  final class FetchHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    let fd: Int32
    let maxBytes: Int
    let promise: EventLoopPromise<Response>
    var response = Response(status: 0, etag: nil)
    var written = 0
    var done = false

    func finish(_ result: Result<Response, Error>) {
      guard !done else { return }
      done = true
      promise.completeWith(result)
    }

    init(fd: Int32, maxBytes: Int, promise: EventLoopPromise<Response>) {
      self.fd = fd
      self.maxBytes = maxBytes
      self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      switch unwrapInboundIn(data) {
      case .head(let head):
        response.status = Int(head.status.code)
        response.etag = head.headers.first(name: "etag")
      case .body(let buffer):
        written += buffer.readableBytes
        if written > maxBytes {
          finish(.failure(FetchError(description: "snapshot larger than \(maxBytes) bytes")))
          context.close(promise: nil)
          return
        }
        let ok = buffer.withUnsafeReadableBytes { AtomicFile.writeAll(fd, $0) }
        if !ok {
          finish(.failure(FetchError(description: "cannot write the download")))
          context.close(promise: nil)
        }
      case .end:
        finish(.success(response))
      }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
      if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
        finish(.failure(FetchError(description: "no bytes from the control plane for \(HTTPFetch.idleTimeout.nanoseconds / 1_000_000_000) s")))
        context.close(promise: nil)
        return
      }
      context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
      finish(.failure(error))
      context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
      finish(.failure(FetchError(description: "connection closed (or timed out) before the response ended")))
    }
  }
}
