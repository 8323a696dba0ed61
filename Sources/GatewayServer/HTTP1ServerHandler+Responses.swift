import GatewayCore
import GatewayObservability
import GatewayUpstream
import NIOCore
import NIOHTTP1

/// Answers the gateway writes itself (refusals, preflights), the end of every response (keep the
/// connection for the next pipelined request, or close it), and the `Connection: close` a last
/// response's head carries. The bytes are ``HTTP1Responses``'; whether the connection goes on is
/// the ``HTTP1ConnectionStateMachine``'s.
extension HTTP1ServerHandler {
  func refuse(_ refusal: GatewayRefusal, closeConnection: Bool, context: ChannelHandlerContext) {
    machine.refusing(close: closeConnection)
    writeRefusal(refusal, context: context)
  }

  /// 204 for an allowed CORS preflight.
  func writePreflight(origin: String, methods: String, context: ChannelHandlerContext) {
    guard request != nil else { return }
    loop.responded(&request!, status: 204)
    let requestID = request!.requestID
    var head = writer.beginHead(version: version, status: .noContent, allocator: context.channel.allocator)
    HTTP1Responses.preflight(into: &head, loop.settings.preflight, origin: origin, methods: methods, requestID: requestID)
    machine.refusing(close: false)
    writer.hold(finishHead(&head))
    if machine.answerWritten() { finishResponse(context: context) }
  }

  func writeRefusal(_ refusal: GatewayRefusal, context: ChannelHandlerContext) {
    // A refusal belongs to a request; one that reached no head (a parser error) gets its
    // context from errorCaught, and this one is never left unanswered either.
    if request == nil {
      request = loop.beginRequest(proto: "h1", host: nil, method: "", uri: "", connection: connection, userAgent: nil)
    }
    let requestID = request!.requestID
    let body = RefusalResponse.body(refusal, requestID: requestID, allocator: context.channel.allocator)
    loop.refused(&request!, refusal, bodyBytes: body.readableBytes, headOnly: method == .HEAD)
    var head = writer.beginHead(
      version: version, status: HTTPResponseStatus(statusCode: refusal.status), allocator: context.channel.allocator,
      capacity: 320 + body.readableBytes)
    HTTP1Responses.refusal(into: &head, refusal, requestID: requestID, bodyBytes: body.readableBytes, retryAfter: retryAfter)
    retryAfter = nil
    // Held, so the JSON body is copied in behind the head: one write, like a small forwarded response.
    writer.hold(finishHead(&head))
    writer.writeBody(body, context: context)
    if machine.answerWritten() {
      finishResponse(context: context)
    } else {
      writer.writeHeld(context: context)  // a HEAD's head is still held (no body part took it)
      context.flush()
    }
  }

  /// The response is complete: keep the connection for the next request or close it.
  func finishResponse(context: ChannelHandlerContext) {
    endRequest(completed: true)
    let finish = machine.finishResponse()
    if finish.resumeRead { context.read() }
    if finish.close {
      let written = context.eventLoop.makePromise(of: Void.self)
      writer.writeEnd(context: context, promise: written)
      context.flush()
      written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    } else {
      writer.writeEnd(context: context, promise: nil)
      arm(.idle)
      // Next pipelined request, if one is waiting (its response is flushed with this one).
      while let part = machine.nextQueuedPart() { process(part, context: context) }
      if machine.readAfterFinish() { context.read() }
      context.flush()
      // An upgrade asked for and not taken (refused, or answered without a 101): the connection
      // stays HTTP/1.1, so the stopped parser must start again on the bytes that follow (last:
      // that can begin the next request at once).
      if finish.restartParser { restartParser(context: context) }
    }
  }

  /// Has the request decoder start a fresh parser on the bytes it holds (after an upgrade that did
  /// not happen). Inside a decode the decoder notices on return; otherwise it is run now, over the
  /// bytes it has buffered (a request pipelined behind the upgrade), with an empty read.
  func restartParser(context: ChannelHandlerContext) {
    parserNeedsFreshStart = true
    guard !decoding else { return }
    let sync = context.pipeline.syncOperations
    guard let decoder = try? sync.handler(type: ByteToMessageHandler<ClientRequestDecoder>.self),
      let decoderContext = try? sync.context(handler: decoder)
    else { return }
    decoder.channelRead(context: decoderContext, data: NIOAny(context.channel.allocator.buffer(capacity: 0)))
  }

  /// Ends a head with `Connection: close` when this response is the connection's last (a close-
  /// delimited body makes it so).
  func finishHead(_ head: inout HTTP1ResponseWriter.Head) -> ByteBuffer {
    let last = machine.isLastResponse
    if last { head.add("Connection", "close") }
    let (bytes, closeDelimited) = writer.finishHead(&head, version: version, requestMethod: method, closing: last)
    if closeDelimited { machine.responseIsCloseDelimited() }
    return bytes
  }
}
