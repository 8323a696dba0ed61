import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Active health checks (`upstreams.<name>.health_check`, carried by each ``ClusterState``): an
/// HTTP GET of its path on every endpoint every interval, off the request path (one event loop,
/// one short connection per check). 2xx and 3xx are healthy; anything else, a refused or slow
/// connection, is not. Thresholds (`unhealthy_after`, `healthy_after`) are applied by
/// ``EndpointHealth``.
public final class HealthChecker: @unchecked Sendable {  // confined to its event loop
  let states: [String: ClusterState]
  let eventLoop: EventLoop
  let logger: Logger
  private var tasks: [RepeatedTask] = []

  public init(states: [String: ClusterState], eventLoop: EventLoop, logger: Logger) {
    self.states = states
    self.eventLoop = eventLoop
    self.logger = logger
  }

  public func start() {
    for state in states.values {
      guard let check = state.healthCheck else { continue }
      for endpoint in state.endpoints {
        let task = eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: check.interval) { [weak self] _ in
          self?.check(endpoint, path: check.path, timeout: min(check.interval, .seconds(2)), tls: state.tlsContext)
        }
        tasks.append(task)
      }
    }
  }

  public func stop() {
    for t in tasks { t.cancel() }
  }

  private func check(_ endpoint: ClusterState.Endpoint, path: String, timeout: TimeAmount, tls: NIOSSLContext?) {
    let loop = eventLoop
    let promise = loop.makePromise(of: Bool.self)
    let host = endpoint.host
    let useTLS = endpoint.tls ? tls : nil
    ClientBootstrap(group: loop)
      .connectTimeout(timeout)
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          if let useTLS {
            let isIP = host.allSatisfy { $0.isNumber || $0 == "." || $0 == ":" }
            try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: useTLS, serverHostname: isIP ? nil : host))
          }
          try channel.pipeline.syncOperations.addHTTPClientHandlers()
          try channel.pipeline.syncOperations.addHandler(CheckHandler(promise: promise))
        }
      }
      .connect(host: host, port: endpoint.port)
      .whenComplete { result in
        switch result {
        case .failure:
          promise.succeed(false)
        case .success(let channel):
          let head = HTTPRequestHead(
            version: .http1_1, method: .GET, uri: path,
            headers: ["Host": host, "User-Agent": "tenant-gateway-health-check", "Connection": "close"])
          channel.write(HTTPClientRequestPart.head(head), promise: nil)
          channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
          let timer = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
          promise.futureResult.whenComplete { _ in
            timer.cancel()
            channel.close(promise: nil)
          }
        }
      }
    let logger = self.logger
    promise.futureResult.whenSuccess { ok in
      let before = endpoint.health.isHealthy
      endpoint.health.recordCheck(ok: ok, now: .now())
      let after = endpoint.health.isHealthy
      if before != after {
        logger.warning("upstream endpoint \(after ? "healthy again" : "unhealthy")", metadata: ["endpoint": "\(endpoint.health.name)"])
      }
    }
  }

  final class CheckHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    let promise: EventLoopPromise<Bool>
    var done = false
    init(promise: EventLoopPromise<Bool>) { self.promise = promise }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      if case .head(let head) = unwrapInboundIn(data), !done {
        done = true
        promise.succeed((200..<400).contains(Int(head.status.code)))
      }
    }
    func channelInactive(context: ChannelHandlerContext) {
      if !done {
        done = true
        promise.succeed(false)
      }
    }
    func errorCaught(context: ChannelHandlerContext, error: Error) {
      context.close(promise: nil)
    }
  }
}
