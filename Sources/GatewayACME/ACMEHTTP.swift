import Foundation
import GatewayCore
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The HTTP(S) exchanges of the ACME driver: one request per connection, bodies bounded.
///
/// ACME traffic is a few requests per certificate, so a connection pool would buy nothing; what
/// matters is that a slow or silent CA can never hold an order (or a handshake) for ever: every
/// exchange has a deadline, and `ca_file` decides whom the client trusts.
struct ACMEHTTP: Sendable {
  struct Reply: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: [UInt8]
  }

  struct Failure: Error, CustomStringConvertible {
    var description: String
  }

  let group: EventLoopGroup
  let tls: NIOSSLContext
  /// Whole exchange, connect included.
  let timeout: TimeAmount
  let maxBodyBytes: Int

  /// `caFile` empty: the system trust store (Let's Encrypt); else only the CAs in that PEM file.
  init(group: EventLoopGroup, caFile: String, timeout: TimeAmount = .seconds(30), maxBodyBytes: Int = 1 << 20) throws {
    var config = TLSConfiguration.makeClientConfiguration()
    if !caFile.isEmpty {
      config.trustRoots = .file(caFile)
    }
    self.tls = try NIOSSLContext(configuration: config)
    self.group = group
    self.timeout = timeout
    self.maxBodyBytes = maxBodyBytes
  }

  func send(_ method: HTTPMethod, _ url: String, body: [UInt8]? = nil, contentType: String? = nil, accept: String? = nil) async throws -> Reply {
    guard let parts = HTTPURL(url) else { throw Failure(description: "not an http(s) URL: \(url)") }
    let loop = group.next()
    let promise = loop.makePromise(of: Reply.self)
    let tls = self.tls
    let maxBody = maxBodyBytes
    let bootstrap = ClientBootstrap(group: loop)
      .connectTimeout(timeout)
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          if parts.tls {
            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: parts.serverName))
          }
          try channel.pipeline.syncOperations.addHTTPClientHandlers()
          try channel.pipeline.syncOperations.addHandler(ReplyHandler(promise: promise, maxBodyBytes: maxBody, isHead: method == .HEAD))
        }
      }
    let channel: Channel
    do {
      channel = try await bootstrap.connect(host: parts.host, port: parts.port).get()
    } catch {
      promise.fail(error)
      throw Failure(description: "cannot connect to \(parts.hostHeader): \(error)")
    }
    let deadline = loop.scheduleTask(in: timeout) {
      promise.fail(Failure(description: "no complete answer from \(parts.hostHeader) within \(timeout.nanoseconds / 1_000_000_000) s"))
      channel.close(promise: nil)
    }
    var headers = HTTPHeaders([("Host", parts.hostHeader), ("User-Agent", "tenant-gateway-acme"), ("Connection", "close")])
    if let accept { headers.add(name: "Accept", value: accept) }
    if let body {
      headers.add(name: "Content-Type", value: contentType ?? "application/jose+json")
      headers.add(name: "Content-Length", value: String(body.count))
    }
    channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: method, uri: parts.target, headers: headers)), promise: nil)
    if let body {
      channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
    }
    channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    defer {
      deadline.cancel()
      channel.close(promise: nil)
    }
    do {
      return try await promise.futureResult.get()
    } catch let e as Failure {
      throw e
    } catch {
      throw Failure(description: "\(parts.hostHeader): \(error)")
    }
  }

  final class ReplyHandler: ChannelInboundHandler, @unchecked Sendable {  // confined to its channel's loop
    typealias InboundIn = HTTPClientResponsePart
    let promise: EventLoopPromise<Reply>
    let maxBodyBytes: Int
    let isHead: Bool
    var reply = Reply(status: 0, headers: [:], body: [])
    var done = false

    init(promise: EventLoopPromise<Reply>, maxBodyBytes: Int, isHead: Bool) {
      self.promise = promise
      self.maxBodyBytes = maxBodyBytes
      self.isHead = isHead
    }

    func finish(_ result: Result<Reply, Error>) {
      guard !done else { return }
      done = true
      promise.completeWith(result)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      switch unwrapInboundIn(data) {
      case .head(let head):
        reply.status = Int(head.status.code)
        reply.headers = head.headers
        if isHead { finish(.success(reply)) }
      case .body(var buffer):
        guard reply.body.count + buffer.readableBytes <= maxBodyBytes else {
          finish(.failure(Failure(description: "response larger than \(maxBodyBytes) bytes")))
          context.close(promise: nil)
          return
        }
        reply.body += buffer.readBytes(length: buffer.readableBytes) ?? []
      case .end:
        finish(.success(reply))
      }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
      finish(.failure(error))
      context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
      finish(.failure(Failure(description: "connection closed before the response ended")))
    }
  }
}
