import NIOCore

/// Holds back a channel's reads while what they would feed cannot keep up (backpressure), and
/// issues the one read it held back when it resumes. Call ``read(_:)`` from the handler's
/// `read(context:)`. Used by the upstream connection (client-side backpressure on a response)
/// and by the byte tunnels (HTTP/1.1 upgrades and extended CONNECT); the HTTP/1.1 client
/// connection's gate is part of ``HTTP1ConnectionStateMachine``, because pipelining and pending
/// upgrades hold its reads too.
package struct ReadGate {
  package private(set) var paused = false
  /// A `read` was held and is owed to the channel.
  package private(set) var pendingRead = false

  package init() {}

  package mutating func read(_ context: ChannelHandlerContext) {
    if paused { pendingRead = true } else { context.read() }
  }

  package mutating func setPaused(_ paused: Bool, context: ChannelHandlerContext?) {
    guard paused != self.paused else { return }
    self.paused = paused
    if !paused, pendingRead, let context {
      pendingRead = false
      context.read()
    }
  }
}
