import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Asks a pool for a connection; answered on the pool's event loop.
public protocol UpstreamConnectionRequester: AnyObject {
  func upstreamConnectionReady(_ connection: UpstreamConnection)
  func upstreamConnectionFailed(_ failure: UpstreamFailure)
}

/// Settings of one pool (one endpoint, one event loop).
public struct UpstreamPoolSettings: Sendable {
  public var host: String
  public var port: Int
  /// Most connections this pool opens (per event loop).
  public var maxConnections: Int
  public var connectTimeout: TimeAmount
  public var responseTimeout: TimeAmount
  /// How long a request may wait for a free connection when the pool is full.
  public var queueTimeout: TimeAmount
  /// Most requests waiting for a connection; beyond it requests fail at once.
  public var maxQueue: Int
  /// Idle connections above this are closed instead of kept.
  public var maxIdle: Int
  /// TLS to the endpoint (`https://`): the context and the name its certificate must carry.
  public var tls: NIOSSLContext?

  public init(
    host: String, port: Int, maxConnections: Int, connectTimeout: TimeAmount, responseTimeout: TimeAmount,
    queueTimeout: TimeAmount, maxQueue: Int = 4096, maxIdle: Int = 1024, tls: NIOSSLContext? = nil
  ) {
    self.tls = tls
    self.host = host
    self.port = port
    self.maxConnections = maxConnections
    self.connectTimeout = connectTimeout
    self.responseTimeout = responseTimeout
    self.queueTimeout = queueTimeout
    self.maxQueue = maxQueue
    self.maxIdle = maxIdle
  }
}

/// Keep-alive HTTP/1.1 connections to one upstream endpoint, owned by one event loop.
///
/// There is one pool per (event loop, endpoint): connections never cross threads, so leasing and
/// returning them takes no lock and no atomic. Idle connections are kept in a stack (the most
/// recently used first: its socket and TLS state are warm). When the pool is full, requesters wait
/// in a bounded FIFO queue with a deadline.
public final class UpstreamPool {
  public let settings: UpstreamPoolSettings
  public let eventLoop: EventLoop
  public let sweeper: DeadlineSweeper
  /// Idle connections, the open and connecting counts, the waiters: every decision is its.
  private var machine: UpstreamPoolStateMachine<UpstreamConnection, UpstreamConnectionRequester>
  /// What connections and waiter timers hold instead of `weak` references to the pool (see
  /// ``BackReference``): the pool is retained on every lease and release.
  private(set) lazy var backReference = BackReference(self)

  /// Counters for `/admin/upstreams` and metrics.
  public private(set) var connectsSucceeded = 0
  public private(set) var connectsFailed = 0

  public init(settings: UpstreamPoolSettings, eventLoop: EventLoop, sweeper: DeadlineSweeper) {
    self.settings = settings
    self.eventLoop = eventLoop
    self.sweeper = sweeper
    self.machine = UpstreamPoolStateMachine(maxConnections: settings.maxConnections, maxQueue: settings.maxQueue, maxIdle: settings.maxIdle)
  }

  /// Open connections (idle plus busy).
  public var openConnections: Int { machine.open }
  public var idleConnections: Int { machine.idle.count }
  /// Requests queued for a connection.
  public var waiting: Int { machine.waiters.count }
  /// Requests holding or waiting for a connection (least-request balancing).
  public var inFlight: Int { machine.inFlight }

  /// Hands `requester` a connection: an idle one at once, a new one once connected, or one freed by
  /// another request. `fresh` forces a new connection (retry after a stale keep-alive connection).
  public func acquire(_ requester: UpstreamConnectionRequester, fresh: Bool = false) {
    eventLoop.preconditionInEventLoop()
    switch machine.acquire(fresh: fresh, isUsable: { $0.channel?.isActive == true }) {
    case .lease(let conn):
      requester.upstreamConnectionReady(conn)
    case .connect:
      connect(for: requester)
    case .fail:
      requester.upstreamConnectionFailed(.poolExhausted)
    case .wait(let id):
      let timeout = eventLoop.assumeIsolated().scheduleTask(in: settings.queueTimeout) { [weak backReference] () -> Void in
        backReference?.target.expireWaiter(id)
      }
      machine.waiting(.init(id: id, requester: requester, timeout: timeout))
    }
  }

  private func expireWaiter(_ id: Int) {
    machine.expire(id)?.requester.upstreamConnectionFailed(.poolExhausted)
  }

  /// Opens a connection for `requester` (the machine has counted it as connecting).
  private func connect(for requester: UpstreamConnectionRequester) {
    let responseTimeout = settings.responseTimeout
    let sweeper = self.sweeper
    let tls = settings.tls
    let serverName = settings.host
    let handlerBox = NIOLoopBoundBox<UpstreamConnection?>(nil, eventLoop: eventLoop)
    let future = ClientBootstrap(group: eventLoop)
      .connectTimeout(settings.connectTimeout)
      .channelOption(.socketOption(.tcp_nodelay), value: 1)
      .channelOption(.autoRead, value: true)
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          if let tls {
            // The endpoint's certificate must chain to ca_file (or the system roots) and name the host.
            let isIP = serverName.allSatisfy { $0.isNumber || $0 == "." || $0 == ":" }
            try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: isIP ? nil : serverName))
          }
          let conn = UpstreamConnection(responseTimeout: responseTimeout, sweeper: sweeper)
          handlerBox.value = conn
          try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(conn.responseDecoder))
          try channel.pipeline.syncOperations.addHandler(conn)
        }
      }
      .connect(host: settings.host, port: settings.port)
    future.assumeIsolated().whenComplete { [self] (result: Result<Channel, Error>) in
      switch result {
      case .success:
        guard let conn = handlerBox.value else {
          machine.connectFailed()
          return
        }
        machine.connected()
        conn.poolReference = backReference
        connectsSucceeded += 1
        requester.upstreamConnectionReady(conn)
      case .failure(let error):
        machine.connectFailed()
        connectsFailed += 1
        let failure: UpstreamFailure = (error as? ChannelError) == .connectTimeout(settings.connectTimeout) ? .connectTimeout : .connectFailed
        requester.upstreamConnectionFailed(failure)
        // A slot freed up: let a waiter try.
        serveWaiter()
      }
    }
  }

  /// Takes back a connection after a cleanly framed exchange.
  func release(_ conn: UpstreamConnection) {
    switch machine.release(conn) {
    case .handTo(let w):
      w.timeout?.cancel()
      w.requester.upstreamConnectionReady(conn)
    case .close:
      conn.close()
    case .keep:
      break
    }
  }

  /// A connection closed (idle or busy).
  func connectionClosed(_ conn: UpstreamConnection) {
    machine.closed(conn)
    serveWaiter()
  }

  private func serveWaiter() {
    guard let w = machine.waiterToConnect() else { return }
    w.timeout?.cancel()
    connect(for: w.requester)
  }

  /// Closes idle connections (shutdown).
  public func closeIdle() {
    for c in machine.takeIdle() { c.close() }
  }
}
