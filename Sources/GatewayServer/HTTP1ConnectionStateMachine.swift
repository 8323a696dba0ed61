import NIOCore
import NIOHTTP1

/// The life of one HTTP/1.1 client connection, as a value: which request part may be processed,
/// which timer runs, whether a response is the connection's last, when to read, when to close.
/// ``HTTP1ServerHandler`` feeds it events and carries out what it returns; it does no I/O and
/// knows no channel, so every transition is tested as a table (`HTTP1ConnectionStateMachineTests`).
///
/// One request at a time (RFC 9112 §9.3.2): parts of a pipelined request that arrive while a
/// response is going out wait in `queue`, and reads are held, until it is done. `Answer` is
/// generic so the tests need no upstream; the handler uses ``Exchange``.
///
/// The three timers (PRODUCT.md §4, §9.5): `idle` between requests (`idle_timeout_s`), `header`
/// from a request's first byte to its complete head, and `body` between request-body bytes while a
/// body is coming (`client_header_timeout_s` both: slowloris on the head, and on the body).
struct HTTP1ConnectionStateMachine<Answer: AnyObject> {
  /// What the client is sending.
  enum Request: Equatable {
    /// Between requests.
    case idle
    /// Bytes of a request arrived; its head is not complete.
    case head
    /// The head was processed; body parts (or its end) are coming.
    case body
    /// The request's end arrived.
    case ended
  }

  /// What the gateway is answering the current request with.
  enum Response {
    /// No request is being answered.
    case none
    /// Forwarded: the exchange owns the answer until it ends.
    case forwarding(Answer)
    /// Refused (or a preflight): the answer is being written by the handler.
    case refusing
    /// A refusal was written whole while the request was still arriving: the rest of it is read and
    /// dropped, then the response is finished.
    case refusedAwaitingRequestEnd
  }

  enum Timer: Equatable { case off, idle, header, body }

  /// What a channel read part is for.
  enum PartDisposition: Equatable {
    /// The connection is closing: later (pipelined) requests are dropped unread.
    case drop
    /// A response is still going out: it waits (RFC 9112 §9.3.2).
    case queue
    case process
  }

  /// What a passed deadline means.
  enum Timeout: Equatable {
    /// The head never completed: 408 and close.
    case header
    /// The body stalled: 408 if nothing was answered yet, else cut.
    case body
    /// Nothing came between requests: close.
    case idle
    /// The body "stalled" because the gateway holds reads (upstream backpressure): not the client.
    case rearmBody
  }

  /// How a finished response leaves the connection.
  struct Finish: Equatable {
    /// Close once the response is written (no keep-alive, a refusal that closes, an early answer).
    var close: Bool
    /// An upgrade asked for and not taken: the stopped parser must start again on what follows.
    var restartParser: Bool
    /// Backpressure ended with a read held: pass it on now.
    var resumeRead: Bool
  }

  private(set) var request = Request.idle
  private(set) var response = Response.none
  private(set) var timer = Timer.idle
  /// The current request allows keep-alive, and no drain has begun.
  private(set) var keepAlive = true
  /// The refusal, an early response or an upstream fault means the connection ends after this response.
  private(set) var closeAfterResponse = false
  /// The connection is going to close: nothing more is processed.
  private(set) var closing = false
  /// Reads held for upstream backpressure (the upstream cannot take more request body).
  private(set) var readPaused = false
  /// A `read` was held and is owed to the channel.
  private(set) var pendingRead = false
  /// The current request asked for a WebSocket upgrade. NIO's parser stops after such a request
  /// (what follows belongs to the new protocol), so until its answer is known, reads are held.
  private(set) var upgradePending = false
  /// A request head has arrived on this connection (a drain spares a brand-new connection).
  private(set) var servedARequest = false
  /// Parts of pipelined requests waiting for the current response to finish.
  private(set) var queue = CircularBuffer<HTTPServerRequestPart>()

  init() {}

  var answer: Answer? {
    if case .forwarding(let a) = response { return a }
    return nil
  }

  /// Between a head and the response's end (what `Connection: close` and drains look at).
  var responseInProgress: Bool {
    switch response {
    case .none, .refusedAwaitingRequestEnd: return false
    case .forwarding, .refusing: return true
    }
  }

  /// The request has started and not ended.
  var requestInProgress: Bool { request == .head || request == .body }

  /// This response is the connection's last: its head says `Connection: close`.
  var isLastResponse: Bool { !keepAlive || closeAfterResponse }

  // MARK: reading

  /// Bytes of a new request arrived (before parsing): on an idle connection the header timer starts.
  mutating func requestBytesArrived() -> Timer? {
    guard request == .idle, case .none = response else { return nil }
    request = .head
    timer = .header
    return .header
  }

  /// A parsed part arrived from the decoder.
  mutating func partArrived(_ part: HTTPServerRequestPart) -> PartDisposition {
    if closing { return .drop }
    if awaitingResponse || !queue.isEmpty {
      queue.append(part)
      return .queue
    }
    return .process
  }

  /// The request ended and its response is still going out: the next request waits.
  var awaitingResponse: Bool { request == .ended && responseInProgress }

  /// The next queued part to process now, if the connection can take it.
  mutating func nextQueuedPart() -> HTTPServerRequestPart? {
    guard !queue.isEmpty, !awaitingResponse, !closing else { return nil }
    return queue.removeFirst()
  }

  /// A head is processed. `keepAlive`: the head allows it and no drain is on.
  mutating func headReceived(keepAlive: Bool) {
    servedARequest = true
    request = .body
    response = .refusing  // until ``forwarding(_:hasBody:)`` says otherwise
    timer = .off
    self.keepAlive = keepAlive
    closeAfterResponse = false
    upgradePending = false
  }

  /// The validated request asks for a WebSocket upgrade.
  mutating func upgradeRequested() { upgradePending = true }

  /// The request goes upstream; a request with a body arms the body timer.
  mutating func forwarding(_ answer: Answer, hasBody: Bool) -> Timer? {
    response = .forwarding(answer)
    guard hasBody else { return nil }
    timer = .body
    return .body
  }

  /// A body part arrived: while the request is in progress, the body timer starts again.
  mutating func bodyArrived() -> Timer? {
    guard requestInProgress else { return nil }
    timer = .body
    return .body
  }

  /// What a request end means for the response.
  enum RequestEnd: Equatable {
    /// Hand it to the exchange.
    case forward
    /// A refusal was written already: finish the response now.
    case finishResponse
    /// Nothing to do (the answer is still being decided or written).
    case none
  }

  mutating func requestEnded() -> RequestEnd {
    request = .ended
    if timer == .body { timer = .off }
    switch response {
    case .forwarding: return .forward
    case .refusedAwaitingRequestEnd: return .finishResponse
    case .refusing, .none: return .none
    }
  }

  // MARK: answering

  /// The request is refused (or answered at the edge); `close`: the connection ends after it.
  mutating func refusing(close: Bool) {
    if close {
      keepAlive = false
      closeAfterResponse = true
    }
    response = .refusing
  }

  /// The exchange ended in a refusal before any response byte.
  mutating func upstreamRefused() {
    if requestInProgress { closeAfterResponse = true }
    response = .refusing
  }

  /// A refusal or preflight is written whole. True: finish the response now (the request is over,
  /// or the connection closes anyway); false: the rest of the request is read and dropped first.
  mutating func answerWritten() -> Bool {
    if !requestInProgress || closeAfterResponse { return true }
    response = .refusedAwaitingRequestEnd
    return false
  }

  /// A forwarded response head goes out. An early answer (the client still sending) ends the
  /// connection: the rest of its request is never read.
  mutating func responseHeadStarting() {
    if requestInProgress { closeAfterResponse = true }
  }

  /// The response's framing is close-delimited: nothing can follow it.
  mutating func responseIsCloseDelimited() {
    keepAlive = false
    closeAfterResponse = true
  }

  /// The forwarded response ended.
  mutating func responseEnded() {
    if requestInProgress { closeAfterResponse = true }
  }

  /// The response is complete: keep the connection for the next request or close it.
  mutating func finishResponse() -> Finish {
    let close = isLastResponse
    if close { closing = true }
    response = .none
    let restart = upgradePending && !close
    upgradePending = false
    var resume = false
    if readPaused {
      readPaused = false
      if pendingRead {
        pendingRead = false
        resume = true
      }
    }
    if close {
      queue.removeAll()
    } else {
      request = .idle
      timer = .idle
    }
    return Finish(close: close, restartParser: restart, resumeRead: resume)
  }

  /// After the queued parts were processed: a held read goes out when nothing holds it any more.
  mutating func readAfterFinish() -> Bool {
    guard queue.isEmpty, !readPaused, pendingRead else { return false }
    pendingRead = false
    return true
  }

  /// The upstream accepted the upgrade: the connection becomes a tunnel (this machine's life ends).
  mutating func upgraded() {
    response = .none
    closing = true
    timer = .off
    upgradePending = false
  }

  /// The parser refused the bytes (§9.4): whatever was running is abandoned, a refusal is written,
  /// and the connection closes.
  mutating func parserFailed() {
    keepAlive = false
    closeAfterResponse = true
    request = .idle
    response = .refusing
  }

  /// The connection is gone.
  mutating func closed() {
    response = .none
    timer = .off
    closing = true
  }

  // MARK: reads and backpressure

  /// The channel asks to read. True: read now; false: held (backpressure, a queued request, or
  /// an upgrade pending — the stopped parser would buffer whatever arrives, without bound).
  mutating func readRequested() -> Bool {
    if readPaused || !queue.isEmpty || upgradePending {
      pendingRead = true
      return false
    }
    return true
  }

  /// Upstream backpressure on or off. True: a held read goes out now.
  mutating func setReadPaused(_ paused: Bool) -> Bool {
    guard paused != readPaused else { return false }
    readPaused = paused
    guard !paused, pendingRead else { return false }
    pendingRead = false
    return true
  }

  // MARK: time

  /// The running timer's deadline passed.
  mutating func deadlinePassed() -> Timeout? {
    let fired = timer
    timer = .off
    switch fired {
    case .off: return nil
    case .idle: return .idle
    case .header:
      // The head never completed, and nothing is being answered.
      guard case .none = response else { return nil }
      closing = true
      return .header
    case .body:
      // Reads held for backpressure are the gateway's doing, not a slow client.
      if readPaused {
        timer = .body
        return .rearmBody
      }
      return .body
    }
  }

  /// A graceful drain is under way: later responses say `Connection: close`. True: this idle
  /// connection closes now. A connection that has sent nothing yet is spared while `young`
  /// (accepted just before the listener closed, its request is on the way).
  mutating func drain(young: Bool) -> Bool {
    keepAlive = false
    guard !closing, request == .idle, case .none = response, queue.isEmpty else { return false }
    if !servedARequest && young { return false }
    closing = true
    return true
  }
}
