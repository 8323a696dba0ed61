import GatewayCore
import GatewayUpstream
import NIOCore
import NIOHTTP1

/// The client side of one exchange: an HTTP/1.1 connection or one HTTP/2 stream.
protocol ClientSide: AnyObject {
  func exchangeSendHead(_ exchange: Exchange, _ head: HTTPResponseHead)
  func exchangeSendBody(_ exchange: Exchange, _ buffer: ByteBuffer)
  func exchangeSendEnd(_ exchange: Exchange)
  /// The exchange failed before any response byte reached the client.
  func exchangeSendRefusal(_ exchange: Exchange, _ refusal: GatewayRefusal)
  /// The exchange failed after the response started: reset the stream or close the connection
  /// (a started response cannot change status, §4).
  func exchangeAbort(_ exchange: Exchange)
  /// Flush what was written for this exchange (end of an upstream read batch).
  func exchangeFlush(_ exchange: Exchange)
  /// The upstream switched protocols (after a 101): join the two connections.
  func exchangeUpgraded(_ exchange: Exchange, connection: UpstreamConnection)
  /// Request-body bytes handed to the upstream socket (HTTP/2: flow-control credit).
  func exchangeConsumedRequestBody(_ exchange: Exchange, bytes: Int)
  /// Stop or resume delivering request body (HTTP/1.1: reads are gated).
  func exchangeSetRequestBodyPaused(_ exchange: Exchange, _ paused: Bool)
}

/// A ``BackReference`` to a client side (generic classes cannot take a protocol existential):
/// what exchanges hold instead of a `weak` reference to the connection handler.
final class ClientReference {
  unowned let target: any ClientSide
  init(_ target: any ClientSide) { self.target = target }
}

/// One proxied request: leases an upstream connection, streams the request body up and the response
/// down with backpressure both ways, and maps upstream faults to the §4 codes.
///
/// Runs entirely on the client connection's event loop (pools are per loop), so the state needs no
/// synchronisation. Phases: waiting for a connection → request streaming → response streaming → done.
final class Exchange: UpstreamConnectionRequester, UpstreamResponseDelegate {
  let requestID: String
  /// HTTP/2 stream id; 0 for HTTP/1.1.
  let streamID: Int
  /// The client side, held through its stand-in (see ``BackReference``): no side table on the handler.
  private weak var clientReference: ClientReference?
  var client: ClientSide? { clientReference?.target }
  let cluster: LoopCluster
  let request: UpstreamRequestHead
  /// The endpoint of the current attempt.
  private var endpoint: Int = 0
  /// The current attempt's endpoint URL (for the access log; no allocation, the name is stored).
  var endpointName: String { cluster.state.endpoints[endpoint].health.name }
  /// Retries left for this request (cluster `retries`).
  private var retriesLeft: Int
  /// GET, HEAD, OPTIONS, PUT, DELETE, TRACE: safe to send again (RFC 9110 §9.2.2).
  private let idempotent: Bool
  let hasBody: Bool
  /// CORS for the response (see ``ForwardPlan``).
  let allowOrigin: String?
  let varyOrigin: Bool

  private(set) var connection: UpstreamConnection?
  private var pendingBody: [ByteBuffer] = []
  private var pendingBytes = 0
  private var uncreditedBytes = 0
  private var requestEnded = false
  private var bodyBytesSent = 0
  private(set) var responseStarted = false
  private(set) var finished = false
  private var attempts = 0
  /// Status sent to the client (for counters and logs).
  private(set) var status = 0
  private(set) var failure: UpstreamFailure?

  /// Body bytes queued before the connection is ready above which the client is paused.
  static let maxPendingBody = 256 * 1024

  init(
    requestID: String, streamID: Int, client: ClientReference, cluster: LoopCluster, request: UpstreamRequestHead, hasBody: Bool,
    allowOrigin: String? = nil, varyOrigin: Bool = false
  ) {
    self.allowOrigin = allowOrigin
    self.varyOrigin = varyOrigin
    self.requestID = requestID
    self.streamID = streamID
    self.clientReference = client
    self.cluster = cluster
    self.retriesLeft = cluster.state.retries
    self.idempotent = RetryPolicy.isIdempotent(request.method.rawValue)
    self.request = request
    self.hasBody = hasBody
  }

  func start() {
    cluster.requestStarted()
    guard let e = cluster.pick() else {
      // Every endpoint is down: answer now rather than wait for a connect timeout.
      fail(.noHealthyEndpoint)
      return
    }
    endpoint = e
    attempts = 1
    // An upgrade goes on a connection of its own: it is never pooled after (a tunnel, or closed),
    // and some servers only upgrade a connection's first request (SwiftNIO's upgrade handler).
    cluster.pools[e].acquire(self, fresh: request.upgrade)
  }

  /// What ``RetryPolicy`` decides from: this attempt's failure and the exchange's state.
  private func attempt(_ failure: UpstreamFailure, _ stage: RetryPolicy.Stage, responseStarted: Bool = false, reused: Bool = false)
    -> RetryPolicy.Attempt
  {
    RetryPolicy.Attempt(
      failure: failure, stage: stage, responseStarted: responseStarted, idempotent: idempotent, bodyBytesSent: bodyBytesSent,
      connectionReused: reused, attempts: attempts, retriesLeft: retriesLeft, budgetAvailable: cluster.hasRetryToken)
  }

  /// Carries out a retry decision; false: answer with the failure (no endpoint left to pick).
  private func retry(_ decision: RetryPolicy.Decision) -> Bool {
    switch decision {
    case .fail:
      return false
    case .sameEndpointFreshConnection:
      attempts += 1
      cluster.pools[endpoint].acquire(self, fresh: true)
      return true
    case .anotherEndpoint:
      guard cluster.takeRetryToken(), let e = cluster.pick(excluding: endpoint) else { return false }
      retriesLeft -= 1
      attempts += 1
      endpoint = e
      cluster.pools[e].acquire(self, fresh: request.upgrade)
      return true
    }
  }

  private var health: EndpointHealth { cluster.state.endpoints[endpoint].health }

  // MARK: from the client side

  func requestBody(_ buffer: ByteBuffer) {
    guard !finished else { return }
    let n = buffer.readableBytes
    if let connection {
      connection.sendBody(buffer)
      bodyBytesSent += n
      credit(n, writable: connection.isWritable)
    } else {
      pendingBody.append(buffer)
      pendingBytes += n
      if pendingBytes > Self.maxPendingBody { client?.exchangeSetRequestBodyPaused(self, true) }
    }
  }

  func requestEnd() {
    requestEnded = true
    guard !finished else { return }
    connection?.finishRequest()
  }

  /// The exchange ends without touching its upstream connection (it became a tunnel).
  func cancelWithoutClosing() {
    finished = true
    connection = nil
  }

  /// The client went away or reset the stream: drop the upstream connection (never reused dirty).
  func cancel() {
    guard !finished else { return }
    finished = true
    connection?.cancel()
    connection = nil
  }

  /// Client-side writability (response backpressure).
  func clientWritabilityChanged(isWritable: Bool) {
    connection?.setReadPaused(!isWritable)
  }

  private func credit(_ n: Int, writable: Bool) {
    if writable {
      client?.exchangeConsumedRequestBody(self, bytes: n + uncreditedBytes)
      uncreditedBytes = 0
    } else {
      uncreditedBytes += n
      client?.exchangeSetRequestBodyPaused(self, true)
    }
  }

  // MARK: UpstreamConnectionRequester

  func upstreamConnectionReady(_ conn: UpstreamConnection) {
    guard !finished else {
      conn.returnUnused()
      return
    }
    connection = conn
    conn.start(request, delegate: self, hasBody: hasBody)
    if !pendingBody.isEmpty {
      let parts = pendingBody
      pendingBody = []
      let bytes = pendingBytes
      pendingBytes = 0
      for part in parts { conn.sendBody(part) }
      bodyBytesSent += bytes
      credit(bytes, writable: conn.isWritable)
      if conn.isWritable { client?.exchangeSetRequestBodyPaused(self, false) }
    }
    if requestEnded && hasBody { conn.finishRequest() }
  }

  func upstreamConnectionFailed(_ failure: UpstreamFailure) {
    guard !finished else { return }
    if failure != .poolExhausted { health.recordFailure(now: cluster.pools[endpoint].sweeper.now) }
    // Nothing was sent: any method may go to another endpoint (the body waits in pendingBody).
    if retry(RetryPolicy.decide(attempt(failure, .connecting))) { return }
    fail(failure)
  }

  // MARK: UpstreamResponseDelegate

  func upstreamResponseHead(_ head: HTTPResponseHead) {
    guard !finished else { return }
    responseStarted = true
    status = Int(head.status.code)
    // Passive health: a 5xx counts against the endpoint, anything else clears it.
    if status >= 500 { health.recordFailure(now: cluster.pools[endpoint].sweeper.now) } else { health.recordSuccess() }
    client?.exchangeSendHead(self, head)
  }

  func upstreamResponseBody(_ buffer: ByteBuffer) {
    guard !finished else { return }
    client?.exchangeSendBody(self, buffer)
  }

  func upstreamResponseEnd() {
    guard !finished else { return }
    finished = true
    connection = nil
    client?.exchangeSendEnd(self)
  }

  func upstreamFailed(_ failure: UpstreamFailure, responseStarted started: Bool) {
    guard !finished else { return }
    let reused = (connection?.useCount ?? 0) > 0
    connection = nil
    let decision = RetryPolicy.decide(attempt(failure, .exchanging, responseStarted: started, reused: reused))
    // A stale keep-alive connection says nothing about the endpoint's health.
    if decision != .sameEndpointFreshConnection && !started { health.recordFailure(now: cluster.pools[endpoint].sweeper.now) }
    if retry(decision) { return }
    fail(failure)
  }

  private func fail(_ failure: UpstreamFailure) {
    finished = true
    self.failure = failure
    if responseStarted {
      client?.exchangeAbort(self)
    } else {
      status = failure.refusal.status
      client?.exchangeSendRefusal(self, failure.refusal)
    }
  }

  func upstreamUpgraded() {
    guard let conn = connection, !finished else { return }
    finished = true
    connection = nil
    client?.exchangeUpgraded(self, connection: conn)
  }

  func upstreamReadComplete() {
    client?.exchangeFlush(self)
  }

  func upstreamWritabilityChanged(isWritable: Bool) {
    guard isWritable else { return }
    if uncreditedBytes > 0 {
      client?.exchangeConsumedRequestBody(self, bytes: uncreditedBytes)
      uncreditedBytes = 0
    }
    client?.exchangeSetRequestBodyPaused(self, false)
  }
}
