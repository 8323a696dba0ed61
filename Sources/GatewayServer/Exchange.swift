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
/// synchronisation. Every decision (phases, body queueing and credit, retries, health, how a
/// failure is answered) is ``ExchangeStateMachine``'s; this class carries them out against the
/// cluster, the upstream connection and the client side.
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
  var hasBody: Bool { machine.hasBody }
  /// CORS for the response (see ``ForwardPlan``).
  let allowOrigin: String?
  let varyOrigin: Bool

  private var machine: ExchangeStateMachine
  private(set) var connection: UpstreamConnection?
  /// Request body that arrived before a connection was ready.
  private var pendingBody: [ByteBuffer] = []

  var responseStarted: Bool { machine.responseStarted }
  var finished: Bool { machine.finished }
  /// Status sent to the client (for counters and logs).
  var status: Int { machine.status }
  var failure: UpstreamFailure? { machine.failure }

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
    self.request = request
    self.machine = ExchangeStateMachine(
      idempotent: RetryPolicy.isIdempotent(request.method.rawValue), hasBody: hasBody, retries: cluster.state.retries)
  }

  func start() {
    cluster.requestStarted()
    let picked = cluster.pick()
    if let answer = machine.start(endpointAvailable: picked != nil) {
      // Every endpoint is down: answer now rather than wait for a connect timeout.
      send(answer)
      return
    }
    endpoint = picked!
    // An upgrade goes on a connection of its own: it is never pooled after (a tunnel, or closed),
    // and some servers only upgrade a connection's first request (SwiftNIO's upgrade handler).
    cluster.pools[endpoint].acquire(self, fresh: request.upgrade)
  }

  /// Carries out what the machine said about a failed attempt.
  private func carryOut(_ action: ExchangeStateMachine.FailureAction, failure: UpstreamFailure) {
    switch action {
    case .ignore:
      return
    case .answer(let answer):
      send(answer)
    case .retrySameEndpoint:
      machine.retrying(anotherEndpoint: false)
      cluster.pools[endpoint].acquire(self, fresh: true)
    case .retryAnotherEndpoint:
      guard cluster.takeRetryToken(), let e = cluster.pick(excluding: endpoint) else {
        send(machine.fail(failure))
        return
      }
      machine.retrying(anotherEndpoint: true)
      endpoint = e
      cluster.pools[e].acquire(self, fresh: request.upgrade)
    }
  }

  private func send(_ answer: ExchangeStateMachine.Answer) {
    connection = nil
    switch answer {
    case .abort: client?.exchangeAbort(self)
    case .refuse(let refusal): client?.exchangeSendRefusal(self, refusal)
    }
  }

  private var health: EndpointHealth { cluster.state.endpoints[endpoint].health }
  private var now: NIODeadline { cluster.pools[endpoint].sweeper.now }

  // MARK: from the client side

  func requestBody(_ buffer: ByteBuffer) {
    switch machine.requestBody(buffer.readableBytes, connected: connection != nil) {
    case .drop:
      return
    case .queue(let pause):
      pendingBody.append(buffer)
      if pause { client?.exchangeSetRequestBodyPaused(self, true) }
    case .send:
      guard let connection else { return }
      connection.sendBody(buffer)
      apply(machine.bodySent(buffer.readableBytes, writable: connection.isWritable), resume: false)
    }
  }

  /// Credits the client, or pauses its body (`resume`: a credit also resumes it).
  private func apply(_ sent: ExchangeStateMachine.Sent, resume: Bool) {
    switch sent {
    case .credit(let bytes):
      client?.exchangeConsumedRequestBody(self, bytes: bytes)
      if resume { client?.exchangeSetRequestBodyPaused(self, false) }
    case .pauseClient:
      client?.exchangeSetRequestBodyPaused(self, true)
    }
  }

  func requestEnd() {
    if machine.requestEnd() { connection?.finishRequest() }
  }

  /// The exchange ends without touching its upstream connection (it became a tunnel).
  func cancelWithoutClosing() {
    _ = machine.cancel()
    connection = nil
  }

  /// The client went away or reset the stream: drop the upstream connection (never reused dirty).
  func cancel() {
    guard machine.cancel() else { return }
    connection?.cancel()
    connection = nil
  }

  /// Client-side writability (response backpressure).
  func clientWritabilityChanged(isWritable: Bool) {
    connection?.setReadPaused(!isWritable)
  }

  // MARK: UpstreamConnectionRequester

  func upstreamConnectionReady(_ conn: UpstreamConnection) {
    switch machine.connectionReady() {
    case .returnUnused:
      conn.returnUnused()
      return
    case .start(let flush):
      connection = conn
      conn.start(request, delegate: self, hasBody: hasBody)
      if flush {
        let parts = pendingBody
        pendingBody = []
        for part in parts { conn.sendBody(part) }
        apply(machine.flushed(writable: conn.isWritable), resume: true)
      }
      if machine.finishesOnStart { conn.finishRequest() }
    }
  }

  func upstreamConnectionFailed(_ failure: UpstreamFailure) {
    let (action, counts) = machine.connectionFailed(failure, budgetAvailable: cluster.hasRetryToken)
    if counts { health.recordFailure(now: now) }
    carryOut(action, failure: failure)
  }

  // MARK: UpstreamResponseDelegate

  func upstreamResponseHead(_ head: HTTPResponseHead) {
    let status = Int(head.status.code)
    guard machine.responseHead(status: status) else { return }
    // Passive health: a 5xx counts against the endpoint, anything else clears it.
    if status >= 500 { health.recordFailure(now: now) } else { health.recordSuccess() }
    client?.exchangeSendHead(self, head)
  }

  func upstreamResponseBody(_ buffer: ByteBuffer) {
    guard machine.responseBody() else { return }
    client?.exchangeSendBody(self, buffer)
  }

  func upstreamResponseEnd() {
    guard machine.responseEnd() else { return }
    connection = nil
    client?.exchangeSendEnd(self)
  }

  func upstreamFailed(_ failure: UpstreamFailure, responseStarted started: Bool) {
    guard !machine.finished else { return }
    let reused = (connection?.useCount ?? 0) > 0
    connection = nil
    let (action, counts) = machine.exchangeFailed(
      failure, responseStarted: started, reused: reused, budgetAvailable: cluster.hasRetryToken)
    if counts { health.recordFailure(now: now) }
    carryOut(action, failure: failure)
  }

  func upstreamUpgraded() {
    guard let conn = connection, machine.upgraded() else { return }
    connection = nil
    client?.exchangeUpgraded(self, connection: conn)
  }

  func upstreamReadComplete() {
    client?.exchangeFlush(self)
  }

  func upstreamWritabilityChanged(isWritable: Bool) {
    guard isWritable else { return }
    if let credit = machine.upstreamWritable() { client?.exchangeConsumedRequestBody(self, bytes: credit) }
    client?.exchangeSetRequestBodyPaused(self, false)
  }
}
