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
  private var idle: [UpstreamConnection] = []
  /// What connections and waiter timers hold instead of `weak` references to the pool (see
  /// ``BackReference``): the pool is retained on every lease and release.
  private(set) lazy var backReference = BackReference(self)
  private var open = 0
  private var connecting = 0
  private var waiters = CircularBuffer<Waiter>()
  private var nextWaiterID = 0

  /// Counters for `/admin/upstreams` and metrics.
  public private(set) var connectsSucceeded = 0
  public private(set) var connectsFailed = 0

  private struct Waiter {
    var id: Int
    var requester: UpstreamConnectionRequester
    var timeout: Scheduled<Void>?
  }

  public init(settings: UpstreamPoolSettings, eventLoop: EventLoop, sweeper: DeadlineSweeper) {
    self.settings = settings
    self.eventLoop = eventLoop
    self.sweeper = sweeper
  }

  /// Open connections (idle plus busy).
  public var openConnections: Int { open }
  public var idleConnections: Int { idle.count }
  /// Requests queued for a connection.
  public var waiting: Int { waiters.count }
  /// Requests holding or waiting for a connection (least-request balancing).
  public var inFlight: Int { open - idle.count + connecting + waiters.count }

  /// Hands `requester` a connection: an idle one at once, a new one once connected, or one freed by
  /// another request. `fresh` forces a new connection (retry after a stale keep-alive connection).
  public func acquire(_ requester: UpstreamConnectionRequester, fresh: Bool = false) {
    eventLoop.preconditionInEventLoop()
    if !fresh {
      while let conn = idle.popLast() {
        if conn.channel?.isActive == true {
          requester.upstreamConnectionReady(conn)
          return
        }
      }
    }
    if open + connecting < settings.maxConnections {
      connect(for: requester)
      return
    }
    guard waiters.count < settings.maxQueue else {
      requester.upstreamConnectionFailed(.poolExhausted)
      return
    }
    let id = nextWaiterID
    nextWaiterID += 1
    let timeout = eventLoop.assumeIsolated().scheduleTask(in: settings.queueTimeout) { [weak backReference] () -> Void in
      backReference?.target.expireWaiter(id)
    }
    waiters.append(Waiter(id: id, requester: requester, timeout: timeout))
  }

  private func expireWaiter(_ id: Int) {
    guard let i = waiters.firstIndex(where: { $0.id == id }) else { return }
    let w = waiters.remove(at: i)
    w.requester.upstreamConnectionFailed(.poolExhausted)
  }

  private func connect(for requester: UpstreamConnectionRequester) {
    connecting += 1
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
      connecting -= 1
      switch result {
      case .success:
        guard let conn = handlerBox.value else { return }
        conn.poolReference = backReference
        open += 1
        connectsSucceeded += 1
        requester.upstreamConnectionReady(conn)
      case .failure(let error):
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
    if let w = waiters.popFirst() {
      w.timeout?.cancel()
      w.requester.upstreamConnectionReady(conn)
      return
    }
    if idle.count >= settings.maxIdle {
      conn.close()
      return
    }
    idle.append(conn)
  }

  /// A connection closed (idle or busy).
  func connectionClosed(_ conn: UpstreamConnection) {
    if let i = idle.firstIndex(where: { $0 === conn }) { idle.remove(at: i) }
    open -= 1
    serveWaiter()
  }

  private func serveWaiter() {
    guard !waiters.isEmpty, open + connecting < settings.maxConnections else { return }
    let w = waiters.removeFirst()
    w.timeout?.cancel()
    connect(for: w.requester)
  }

  /// Closes idle connections (shutdown).
  public func closeIdle() {
    let all = idle
    idle.removeAll()
    for c in all { c.close() }
  }
}
