import ArgumentParser
import Crypto
import Foundation
import GatewayConfig
import GatewayCore
import GatewaySigning
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

/// A small HTTP/1.1 backend for the demo and the integration tests: it verifies the X-Tenant
/// header the way a real backend would and answers with the verified claims.
///
/// - any path: `{"verified":…,"claims":{…},"method":…,"path":…,"headers":[[name,value],…]}`
/// - `/__download?bytes=N`: N deterministic bytes, streamed
/// - `/__upload`: reads the body, answers `{"bytes":N,"sha256":…}`
/// - `/__status/CODE`: answers with that status
/// - `/__sleep/MS`: answers after MS milliseconds
/// - `/__reset`: promises 1000 bytes, sends 7, closes
/// - `/__ws`: a WebSocket echo; its first message is the verified X-Tenant (as JSON)
/// - `--tls-cert/--tls-key`: serve HTTPS instead (TLS-upstream tests)
/// - `--record FILE`: one JSON line per received request (tests prove what did or did not arrive).
struct DemoUpstream: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "demo-upstream", abstract: "Run a demo backend that verifies and echoes the X-Tenant claims.")

  @Option(help: "Address to listen on.")
  var listen: String = "127.0.0.1:9000"

  @Option(help: "gateway.conf whose tenant_header signing keys verify X-Tenant.")
  var config: String = "gateway.conf"

  @Option(help: "Append one JSON line per request to this file.")
  var record: String?

  @Option(help: "Serve HTTPS with this certificate (PEM).")
  var tlsCert: String?

  @Option(help: "The certificate's private key (PEM).")
  var tlsKey: String?

  @Option(help: "A name for this instance, echoed as \"instance\" (tests with several upstreams).")
  var instance: String = "demo"

  @Option(help: "Where EdDSA verification keys come from (default: the gateway's admin listener, /.well-known/tenant-jwks.json).")
  var jwksURL: String?

  func run() throws {
    let outcome = ConfigLoader.load(path: config)
    guard let cfg = outcome.config else {
      for e in outcome.errors { printError(e.message(file: config)) }
      throw ExitCode(1)
    }
    var keys: [String: SymmetricKey] = [:]
    for spec in cfg.tenantHeader.signingKeys where spec.alg == "HS256" {
      if let bytes = FileManager.default.contents(atPath: spec.file), let k = SigningKey.hs256Secret(fileContents: Array(bytes)) {
        keys[spec.kid] = k
      }
    }
    guard let address = SocketAddressSpec(listen) else { throw ValidationError("--listen must be host:port") }
    // EdDSA keys come from the gateway's JWKS, as a real backend would get them (docs/backend.md).
    let jwks = JWKSCache(url: jwksURL ?? "http://\(cfg.admin.address)/.well-known/tenant-jwks.json")
    let verifier = DemoTokenVerifier(
      keys: keys, jwks: jwks, issuer: cfg.tenantHeader.issuer, headerName: cfg.tenantHeader.name.lowercased())
    let recorder = record.map { DemoRecorder(path: $0) }
    let sslContext: NIOSSLContext?
    if let tlsCert, let tlsKey {
      let chain = try NIOSSLCertificate.fromPEMFile(tlsCert)
      let key = try NIOSSLPrivateKey(file: tlsKey, format: .pem)
      sslContext = try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key)))
    } else {
      sslContext = nil
    }
    let instanceName = instance
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let channel = try ServerBootstrap(group: group)
      .serverChannelOption(.backlog, value: 1024)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          if let sslContext { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext)) }
          let handler = DemoHandler(verifier: verifier, recorder: recorder, instance: instanceName)
          let upgrader = NIOWebSocketServerUpgrader(
            shouldUpgrade: { channel, head in
              channel.eventLoop.makeSucceededFuture(head.uri.hasPrefix("/__ws") ? HTTPHeaders() : nil)
            },
            upgradePipelineHandler: { channel, head in
              let verified = verifier.verify(head.headers.first(name: verifier.headerName))
              var doc: [String: Any] = ["verified": verified.ok, "reason": verified.reason, "instance": instanceName]
              if let c = verified.claims { doc["claims"] = c }
              let hello = String(decoding: (try? JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
              return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(WebSocketEcho(hello: hello))
              }
            })
          try channel.pipeline.syncOperations.configureHTTPServerPipeline(
            withServerUpgrade: (upgraders: [upgrader], completionHandler: { context in
              if let h = try? context.pipeline.syncOperations.handler(type: DemoHandler.self) {
                context.pipeline.syncOperations.removeHandler(h, promise: nil)
              }
            }))
          try channel.pipeline.syncOperations.addHandler(handler)
        }
      }
      .bind(host: address.host, port: address.port).wait()
    FileHandle.standardError.write(Data("demo upstream listening on \(address)\n".utf8))
    // Exit on SIGTERM/SIGINT even when started with those signals ignored (as some runners do).
    var sources: [DispatchSourceSignal] = []
    for sig in [SIGTERM, SIGINT] {
      signal(sig, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
      source.setEventHandler { Foundation.exit(0) }
      source.resume()
      sources.append(source)
    }
    try channel.closeFuture.wait()
    withExtendedLifetime(sources) {}
  }
}

final class DemoRecorder: @unchecked Sendable {
  let handle: FileHandle?
  let lock = NSLock()
  init(path: String) {
    _ = FileManager.default.createFile(atPath: path, contents: nil)
    handle = FileHandle(forWritingAtPath: path)
    handle?.seekToEndOfFile()
  }
  func record(_ line: String) {
    lock.withLock { handle?.write(Data((line + "\n").utf8)) }
  }
}

/// Verifies X-Tenant like a backend: HS256 (the shared secret) or EdDSA (the gateway's JWKS) by
/// `kid`, then `iss` and `exp`.
struct DemoTokenVerifier: Sendable {
  let keys: [String: SymmetricKey]
  let jwks: JWKSCache
  let issuer: String
  let headerName: String

  func verify(_ token: String?) -> (ok: Bool, reason: String, claims: Any?) {
    guard let token else { return (false, "no \(headerName) header", nil) }
    let parts = token.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 3, let headerBytes = Base64URL.decode(parts[0]), let payloadBytes = Base64URL.decode(parts[1]),
      let sig = Base64URL.decode(parts[2]),
      let header = try? JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any],
      let claims = try? JSONSerialization.jsonObject(with: Data(payloadBytes)) as? [String: Any]
    else { return (false, "malformed token", nil) }
    let signingInput = Data((parts[0] + "." + parts[1]).utf8)
    guard let kid = header["kid"] as? String else { return (false, "no kid", claims) }
    switch header["alg"] as? String {
    case "HS256":
      guard let key = keys[kid] else { return (false, "unknown kid", claims) }
      guard HMAC<SHA256>.isValidAuthenticationCode(sig, authenticating: signingInput, using: key) else {
        return (false, "bad signature", claims)
      }
    case "EdDSA":
      guard let key = jwks.key(kid) else { return (false, "kid \(kid) not in the JWKS", claims) }
      guard key.isValidSignature(sig, for: signingInput) else { return (false, "bad signature", claims) }
    default:
      return (false, "unknown alg", claims)
    }
    guard claims["iss"] as? String == issuer else { return (false, "wrong issuer", claims) }
    guard let exp = claims["exp"] as? Int, exp >= Int(Date().timeIntervalSince1970) else { return (false, "expired", claims) }
    return (true, "ok", claims)
  }
}

/// Echoes WebSocket frames after sending one text frame with the verified claims.
final class WebSocketEcho: ChannelInboundHandler {
  typealias InboundIn = WebSocketFrame
  typealias OutboundOut = WebSocketFrame
  let hello: String
  init(hello: String) { self.hello = hello }

  func handlerAdded(context: ChannelHandlerContext) {
    let data = context.channel.allocator.buffer(string: hello)
    context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: data)), promise: nil)
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let frame = unwrapInboundIn(data)
    switch frame.opcode {
    case .text, .binary:
      context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: frame.opcode, data: frame.unmaskedData)), promise: nil)
    case .ping:
      context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
    case .connectionClose:
      context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: frame.unmaskedData))).assumeIsolated().whenComplete { _ in
        context.close(promise: nil)
      }
    default:
      break
    }
  }
}

final class DemoHandler: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  let verifier: DemoTokenVerifier
  let recorder: DemoRecorder?
  let instance: String
  private var head: HTTPRequestHead?
  private var bodyBytes = 0
  private var hasher = SHA256()

  init(verifier: DemoTokenVerifier, recorder: DemoRecorder?, instance: String) {
    self.verifier = verifier
    self.recorder = recorder
    self.instance = instance
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head(let h):
      head = h
      bodyBytes = 0
      hasher = SHA256()
      if let recorder {
        let line: [String: Any] = [
          "method": h.method.rawValue, "uri": h.uri, "headers": h.headers.map { [$0.name, $0.value] },
        ]
        if let d = try? JSONSerialization.data(withJSONObject: line) { recorder.record(String(decoding: d, as: UTF8.self)) }
      }
    case .body(let buffer):
      bodyBytes += buffer.readableBytes
      buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
    case .end:
      guard let head else { return }
      self.head = nil
      respond(head, context: context)
    }
  }

  private func respond(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
    let path = String(head.uri.split(separator: "?", maxSplits: 1).first ?? "")
    let query = head.uri.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
    if path == "/__download" {
      let n = query.split(separator: "&").compactMap { p -> Int? in
        let kv = p.split(separator: "=")
        return kv.count == 2 && kv[0] == "bytes" ? Int(kv[1]) : nil
      }.first ?? 0
      streamDownload(n, context: context)
      return
    }
    if path == "/__latebody" {
      // The head at once, the body 1.5 s later (a response head must not wait for its body).
      let body = context.channel.allocator.buffer(string: "late body\n")
      var headers = HTTPHeaders()
      headers.add(name: "Content-Type", value: "text/plain")
      headers.add(name: "Content-Length", value: String(body.readableBytes))
      context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
      context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(1500)) {
        context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
      }
      return
    }
    if path.hasPrefix("/__sleep/"), let ms = Int64(path.dropFirst(9)) {
      // Answer late (upstream timeout tests).
      context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(ms)) {
        self.send(context, status: .ok, body: "{\"slept\":\(ms)}")
      }
      return
    }
    if let raw = Self.rawResponses[path] {
      // Hand-written responses that break the rules (upstream-fault tests): written below the HTTP
      // encoder, then the connection is closed.
      if let encoder = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self) {
        encoder.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: raw()))).assumeIsolated().whenComplete { _ in
          context.close(promise: nil)
        }
      }
      return
    }
    if path == "/__drop" {
      // Close without answering: a reset before any response byte (retry tests).
      context.close(promise: nil)
      return
    }
    if path == "/__reset" {
      // Send a head promising more than is ever sent, then close (a reset mid-response).
      var headers = HTTPHeaders()
      headers.add(name: "Content-Length", value: "1000")
      context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
      context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: "partial"))))).assumeIsolated().whenComplete { _ in
        context.close(promise: nil)
      }
      return
    }
    if path.hasPrefix("/__status/"), let code = Int(path.dropFirst(10)) {
      send(context, status: HTTPResponseStatus(statusCode: code), body: "{\"status\":\(code)}")
      return
    }
    if path == "/__upload" {
      let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
      send(context, status: .ok, body: "{\"bytes\":\(bodyBytes),\"sha256\":\"\(digest)\"}")
      return
    }
    let token = head.headers.first(name: verifier.headerName)
    let result = verifier.verify(token)
    var doc: [String: Any] = [
      "verified": result.ok, "reason": result.reason, "method": head.method.rawValue, "path": path,
      "headers": head.headers.map { [$0.name, $0.value] }, "bodyBytes": bodyBytes, "instance": instance,
    ]
    if let claims = result.claims { doc["claims"] = claims }
    let data = (try? JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys])) ?? Data()
    // ?cors=1: answer with over-wide CORS headers, as a buggy backend might (the gateway must replace them).
    let extra: [(String, String)] = query.contains("cors=1")
      ? [("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Credentials", "true")] : []
    send(context, status: result.ok ? .ok : .unauthorized, body: String(decoding: data, as: UTF8.self), extra: extra)
  }

  static let rawResponses: [String: @Sendable () -> String] = [
    // Content-Length and Transfer-Encoding together: ambiguous framing.
    "/__badframing": { "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" },
    // A 100 KiB header block.
    "/__bigheaders": { "HTTP/1.1 200 OK\r\nX-Big: \(String(repeating: "x", count: 100_000))\r\nContent-Length: 2\r\n\r\nok" },
    // A 103 Early Hints, then the real response.
    "/__early": { "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nafter" },
    // The body ends before Content-Length says.
    "/__truncated": { "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this" },
    // A chunked body (no Content-Length): the gateway must frame it again for its client.
    "/__chunked": { "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n" },
    // Not HTTP at all.
    "/__garbage": { "this is not an HTTP response\r\n\r\n" },
  ]

  private func send(_ context: ChannelHandlerContext, status: HTTPResponseStatus, body: String, extra: [(String, String)] = []) {
    let buffer = context.channel.allocator.buffer(string: body + "\n")
    var headers = HTTPHeaders(extra)
    headers.add(name: "Content-Type", value: "application/json")
    headers.add(name: "Content-Length", value: String(buffer.readableBytes))
    context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
    context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
    context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
  }

  /// Bytes `i % 251` for i in 0..<n, in 64 KiB chunks that respect channel writability.
  private func streamDownload(_ n: Int, context: ChannelHandlerContext) {
    var headers = HTTPHeaders()
    headers.add(name: "Content-Type", value: "application/octet-stream")
    headers.add(name: "Content-Length", value: String(n))
    context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
    var sent = 0
    let loop = context.eventLoop.assumeIsolated()
    func pump() {
      while sent < n {
        let size = min(65536, n - sent)
        var buf = context.channel.allocator.buffer(capacity: size)
        buf.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { ptr in
          for i in 0..<size { ptr[i] = UInt8((sent + i) % 251) }
          return size
        }
        sent += size
        if !context.channel.isWritable {
          context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buf)))).assumeIsolated().whenComplete { _ in
            loop.execute { pump() }
          }
          return
        }
        context.write(wrapOutboundOut(.body(.byteBuffer(buf))), promise: nil)
      }
      context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
    pump()
  }
}

/// The gateway's EdDSA public keys by kid, fetched from its JWKS on the first unknown kid and again
/// at most every 5 s (a rotated-in key is found without hammering the gateway). A plain blocking
/// HTTP/1.1 GET: the admin listener is plain HTTP, and this is a demo backend.
final class JWKSCache: @unchecked Sendable {
  private let url: String
  private let lock = NSLock()
  private var keys: [String: Curve25519.Signing.PublicKey] = [:]
  private var lastFetch: Date?

  init(url: String) { self.url = url }

  func key(_ kid: String) -> Curve25519.Signing.PublicKey? {
    lock.lock()
    defer { lock.unlock() }
    if let k = keys[kid] { return k }
    if let last = lastFetch, Date().timeIntervalSince(last) < 5 { return nil }
    lastFetch = Date()
    if let fetched = Self.fetch(url) { keys = fetched }
    return keys[kid]
  }

  static func fetch(_ url: String) -> [String: Curve25519.Signing.PublicKey]? {
    guard url.hasPrefix("http://") else { return nil }
    let rest = url.dropFirst("http://".count)
    let slash = rest.firstIndex(of: "/") ?? rest.endIndex
    guard let address = SocketAddressSpec(String(rest[..<slash])) else { return nil }
    let path = slash == rest.endIndex ? "/" : String(rest[slash...])
    guard let body = httpGet(host: address.host, port: address.port, path: path),
      let doc = try? JSONSerialization.jsonObject(with: body) as? [String: Any], let list = doc["keys"] as? [[String: Any]]
    else { return nil }
    var out: [String: Curve25519.Signing.PublicKey] = [:]
    for k in list where k["kty"] as? String == "OKP" && k["crv"] as? String == "Ed25519" {
      if let kid = k["kid"] as? String, let x = (k["x"] as? String).flatMap({ Base64URL.decode(Substring($0)) }),
        let key = try? Curve25519.Signing.PublicKey(rawRepresentation: x)
      {
        out[kid] = key
      }
    }
    return out
  }

  /// The body of a 200 answer, or nil.
  static func httpGet(host: String, port: Int, path: String) -> Data? {
    var hints = addrinfo()
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var info: UnsafeMutablePointer<addrinfo>?
    guard getaddrinfo(host, String(port), &hints, &info) == 0, let first = info else { return nil }
    defer { freeaddrinfo(info) }
    let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 2, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else { return nil }
    let request = Array("GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n\r\n".utf8)
    guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else { return nil }
    var response = Data()
    var buffer = [UInt8](repeating: 0, count: 16384)
    while true {
      let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
      if n <= 0 { break }
      response.append(contentsOf: buffer[0..<n])
      if response.count > 1 << 20 { return nil }
    }
    guard let split = response.range(of: Data("\r\n\r\n".utf8)),
      String(decoding: response[..<split.lowerBound], as: UTF8.self).hasPrefix("HTTP/1.1 200")
    else { return nil }
    return response[split.upperBound...]
  }
}
