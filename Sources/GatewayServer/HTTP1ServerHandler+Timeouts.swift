import GatewayCore
import GatewayObservability
import GatewayUpstream
import NIOCore
import NIOHTTP1

/// The connection's timers as the ``HTTP1ConnectionStateMachine`` runs them (idle between requests,
/// header and body deadlines, the drain's grace), checked by the loop's ``DeadlineSweeper`` tick.
extension HTTP1ServerHandler {
  /// Sets the deadline of a timer the machine started.
  func arm(_ timer: HTTP1ConnectionStateMachine<Exchange>.Timer?) {
    switch timer {
    case nil: return
    case .off: deadline = nil
    case .idle: deadline = loop.sweeper.deadline(in: loop.settings.idleTimeout)
    case .header, .body: deadline = loop.sweeper.deadline(in: loop.settings.clientHeaderTimeout)
    }
  }

  func checkDeadlines(now: NIODeadline) {
    if loop.draining { drainStep() }
    // A deadline left over from a timer the machine has stopped means nothing.
    guard machine.timer != .off, let d = deadline, d <= now else { return }
    deadline = nil
    switch machine.deadlinePassed() {
    case nil: return
    case .rearmBody: arm(.body)
    case .body: bodyTimedOut()
    case .header: headerTimedOut()
    case .idle: context?.close(promise: nil)
    }
  }

  /// A graceful drain is under way: later responses say `Connection: close`, and an idle
  /// connection closes now (a request in flight finishes first). A connection accepted just before
  /// the listener closed has a request on its way: closing it now would fail that request (the
  /// client cannot know it was never read), so it gets a moment to send it.
  func drainStep() {
    guard let context else { return }
    if machine.drain(young: loop.sweeper.now < openedAt + Self.drainGraceForNewConnections) {
      context.close(promise: nil)
    }
  }

  /// Called by ``ClientRequestDecoder`` when bytes of a new request arrive on an idle connection.
  func requestBytesArrived() {
    guard context != nil else { return }
    arm(machine.requestBytesArrived())
  }

  /// A request body stalled for `client_header_timeout_s` (slowloris on the body): 408 if nothing
  /// was answered yet, else the connection is cut. Either way the upstream request is abandoned.
  func bodyTimedOut() {
    guard let context else { return }
    if let exchange = machine.answer {
      exchange.cancel()
      if exchange.responseStarted {
        context.close(promise: nil)
        return
      }
      refuse(.requestTimeout, closeConnection: true, context: context)
    } else {
      context.close(promise: nil)
    }
  }

  /// The head never completed: answer 408 and close (§4 request_timeout).
  func headerTimedOut() {
    guard let context else { return }
    let refusal = GatewayRefusal.requestTimeout
    let requestID = loop.requestIDs.next()
    loop.counters.recordRefusal(refusal)
    loop.counters.recordResponse(status: refusal.status)
    let text = HTTP1Responses.headerTimeout(requestID: requestID)
    context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: text))).assumeIsolated()
      .whenComplete { _ in context.close(promise: nil) }
  }
}
