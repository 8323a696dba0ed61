import Atomics
import GatewayACME
import GatewayConfig
import GatewayCore
import GatewayObservability
import GatewayUpstream
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOSSL
import NIOTLS

/// Sets up each accepted client connection: the connection limit, the TLS handshake deadline, the
/// PROXY protocol header (only from the configured balancers), the ClientHello (SNI picks the
/// certificate; an `acme-tls/1`-only hello gets tls-alpn-01's challenge certificate or is closed),
/// TLS, then HTTP/1.1 or HTTP/2 by ALPN. Built once by ``GatewayServer`` from immutable parts,
/// and called on each channel's own loop.
struct ConnectionInitializer: @unchecked Sendable {
  let contexts: [ObjectIdentifier: LoopContext]
  let certificates: CertificateSet
  /// `tls.custom_domain_certs_dir` (nil: off).
  let customCertificates: CustomDomainCertificates?
  /// `tls.acme` (nil: off).
  let acme: ACMECertificates?
  let profile: TLSProfile
  let settings: ServerSettings
  /// `listen.proxy_protocol` and the balancers it is trusted from.
  let proxyProtocol: Bool
  let proxyProtocolFrom: [CIDRBlock]
  /// Client connections open now, across loops (`limits.max_connections`).
  let openConnections: ManagedAtomic<Int>

  func initialize(_ channel: Channel) -> EventLoopFuture<Void> {
    guard let loop = contexts[ObjectIdentifier(channel.eventLoop)] else {
      return channel.close()
    }
    let open = openConnections.loadThenWrappingIncrement(ordering: .relaxed)
    let counter = openConnections
    channel.closeFuture.whenComplete { _ in counter.wrappingDecrement(ordering: .relaxed) }
    loop.counters.connectionsAccepted += 1
    if open >= settings.maxConnections {
      loop.counters.connectionsRefusedAtLimit += 1
      return channel.close()
    }
    let certificates = self.certificates
    let settings = self.settings
    let peerAddress = channel.remoteAddress?.ipAddress ?? "unknown"
    // TLS must complete within the header timeout (a slow ClientHello is a slowloris too).
    let handshakeTimer = HandshakeDeadline(channel: channel, deadline: loop.sweeper.deadline(in: settings.clientHeaderTimeout))
    loop.sweeper.register(handshakeTimer)
    channel.closeFuture.whenComplete { _ in handshakeTimer.completed() }

    let customCertificates = self.customCertificates

    /// Adds TLS with the chosen certificate, then HTTP/1.1 or HTTP/2 by ALPN.
    func addTLS(_ context: NIOSSLContext, names: CertificateNames, clientAddress: String) throws {
      var info = ConnectionInfo(clientAddress: clientAddress, certificate: names)
      let sync = channel.pipeline.syncOperations
      let tls = NIOSSLServerHandler(context: context)
      try sync.addHandler(tls)
      let failures = TLSFailureCounter(counters: loop.counters)
      try sync.addHandler(failures)
      try sync.addHandler(
        ApplicationProtocolNegotiationHandler { alpn in
          handshakeTimer.completed()
          loop.counters.tlsHandshakes += 1
          let version = tls.tlsVersion
          loop.counters.tlsHandshakesByVersion[version == .tlsv13 ? 1 : 0] += 1
          info.tlsVersion = version == .tlsv13 ? "TLSv1.3" : "TLSv1.2"
          return channel.eventLoop.makeCompletedFuture {
            channel.pipeline.syncOperations.removeHandler(failures, promise: nil)
            switch alpn {
            case .negotiated("h2"):
              try Self.configureHTTP2(channel, loop: loop, info: info, settings: settings)
            default:
              try Self.configureHTTP1(channel, loop: loop, info: info, settings: settings)
            }
          }
        })
    }

    let acme = self.acme
    let profile = self.profile

    /// A tls-alpn-01 validation (RFC 8737 §3): the challenge certificate, ALPN `acme-tls/1`, and
    /// the connection closed once the handshake is done. It never reaches HTTP.
    func addChallengeTLS(_ challenge: ChallengeCertificate) throws {
      let context = try NIOSSLContext(configuration: profile.challengeConfiguration(challenge))
      try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
      try channel.pipeline.syncOperations.addHandler(CloseAfterHandshake(onDone: { handshakeTimer.completed() }))
      loop.counters.acmeChallengeHandshakes += 1
    }

    /// The ClientHello picks the certificate; `clientAddress` is the peer's, or the one a trusted
    /// load balancer's PROXY header named.
    func addSNI(clientAddress: String) throws {
      let hello = ClientHelloHandler { serverName, alpn in
        let name = serverName.flatMap(HostName.normalize)
        // tls-alpn-01: a handshake offering only acme-tls/1 gets the challenge certificate when the
        // name has one pending, and is closed otherwise (RFC 8737 §3: never another certificate).
        if alpn == [ChallengeCertificate.alpnProtocol] {
          guard let name, let acme else {
            loop.counters.acmeChallengeRefused += 1
            return channel.close()
          }
          return acme.challengeCertificate(for: name, on: channel.eventLoop).assumeIsolated().flatMapThrowing { challenge in
            guard let challenge else {
              loop.counters.acmeChallengeRefused += 1
              channel.close(promise: nil)
              return
            }
            try addChallengeTLS(challenge)
          }.nonisolated()
        }
        // A configured certificate (exact, then wildcard) wins; then the custom-domain directory;
        // then ACME's storage (for a domain the table maps to an active shop); else the first
        // configured certificate (PRODUCT.md §2, §10).
        if let name, certificates.match(name) == nil, customCertificates != nil || acme != nil {
          let loopBound = channel.eventLoop
          let fromDirectory = customCertificates?.lookup(name, on: loopBound) ?? loopBound.makeSucceededFuture(nil)
          // The lookups complete on this channel's loop, so the pipeline is changed on its loop.
          return fromDirectory.flatMap { loaded -> EventLoopFuture<CustomDomainCertificates.Loaded?> in
            if let loaded { return loopBound.makeSucceededFuture(loaded) }
            guard let acme else { return loopBound.makeSucceededFuture(nil) }
            return acme.certificate(for: name, on: loopBound, extendDeadline: { wait in
              loopBound.execute { handshakeTimer.extend(to: .now() + wait) }
            })
          }.assumeIsolated().flatMapThrowing { loaded in
            let entry = certificates.entries[0]
            try addTLS(loaded?.context ?? entry.context, names: loaded?.names ?? entry.names, clientAddress: clientAddress)
          }.nonisolated()
        }
        let entry = certificates.entries[name.flatMap(certificates.match) ?? 0]
        return channel.eventLoop.makeCompletedFuture { try addTLS(entry.context, names: entry.names, clientAddress: clientAddress) }
      }
      try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(hello))
    }

    guard proxyProtocol else {
      return channel.eventLoop.makeCompletedFuture { try addSNI(clientAddress: peerAddress) }
    }
    // PROXY protocol: only the configured balancers may say who the client is.
    guard let peer = CIDRBlock.parseAddress(peerAddress), proxyProtocolFrom.contains(where: { $0.contains(peer) }) else {
      loop.counters.proxyProtocolRefused["untrusted", default: 0] += 1
      return channel.close()
    }
    return channel.eventLoop.makeCompletedFuture {
      let proxy = ProxyProtocolHandler(
        onHeader: { _, source in try addSNI(clientAddress: source ?? peerAddress) },
        onRefused: { _ in loop.counters.proxyProtocolRefused["malformed", default: 0] += 1 })
      try channel.pipeline.syncOperations.addHandler(proxy)
    }
  }

  static func configureHTTP1(_ channel: Channel, loop: LoopContext, info: ConnectionInfo, settings: ServerSettings) throws {
    let sync = channel.pipeline.syncOperations
    var limits = NIOHTTPDecoderLimitConfiguration()
    // Our own checks answer 414/431 precisely; the parser's limits are the backstop for giants.
    limits.maxHeaderFieldSize = settings.limits.maxHeaderBytes + settings.limits.maxURIBytes
    limits.maxHeaderListSize = settings.limits.maxHeaderBytes + settings.limits.maxURIBytes
    limits.maxHeaderFieldCount = settings.limits.maxHeaderCount + 1
    // Only the request decoder: responses are written as bytes by HTTP1ServerHandler (no encoder hop).
    let handler = HTTP1ServerHandler(loop: loop, connection: info)
    try sync.addHandler(ByteToMessageHandler(ClientRequestDecoder(limits: limits, handler: handler)))
    try sync.addHandler(handler)
  }

  static func configureHTTP2(_ channel: Channel, loop: LoopContext, info: ConnectionInfo, settings: ServerSettings) throws {
    let sync = channel.pipeline.syncOperations
    var connectionConfig = NIOHTTP2Handler.ConnectionConfiguration()
    connectionConfig.initialSettings = [
      HTTP2Setting(parameter: .maxConcurrentStreams, value: settings.h2MaxConcurrentStreams),
      HTTP2Setting(parameter: .maxHeaderListSize, value: settings.limits.maxHeaderBytes + settings.limits.maxURIBytes),
      HTTP2Setting(parameter: .initialWindowSize, value: 65535),
      // WebSockets over HTTP/2 (RFC 8441): see ExtendedConnect.swift.
      HTTP2Setting(parameter: .enableConnectProtocol, value: 1),
    ]
    let handler = HTTP2ServerHandler(loop: loop, connection: info)
    // The handler also watches the frames NIOHTTP2Handler writes (to close after an error GOAWAY).
    try sync.addHandler(NIOHTTP2Handler(mode: .server, frameDelegate: handler, connectionConfiguration: connectionConfig))
    try sync.addHandler(handler)
  }
}

/// Closes a connection whose TLS handshake has not completed by its deadline.
final class HandshakeDeadline: Expirable, @unchecked Sendable {  // confined to the channel's loop
  /// Strong, and let go of on completion, expiry or close: a `weak` reference would give the
  /// channel a side table for life, putting each of its many retains per request on the slow path.
  private var channel: Channel?
  private var deadline: NIODeadline?

  init(channel: Channel, deadline: NIODeadline) {
    self.channel = channel
    self.deadline = deadline
  }

  func completed() {
    deadline = nil
    channel = nil
  }

  /// Moves the deadline later (a handshake waiting for its domain's first ACME certificate).
  func extend(to later: NIODeadline) {
    guard let d = deadline, later > d else { return }
    deadline = later
  }

  func checkDeadlines(now: NIODeadline) {
    guard let d = deadline, d <= now else { return }
    deadline = nil
    channel?.close(promise: nil)
    channel = nil
  }
}

/// Counts and closes failed TLS handshakes (removed once the handshake completes).
final class TLSFailureCounter: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = Any
  let counters: LoopCounters
  init(counters: LoopCounters) { self.counters = counters }
  func errorCaught(context: ChannelHandlerContext, error: Error) {
    counters.tlsHandshakeFailures += 1
    counters.tlsFailuresByReason[TLSFailureReason.classify(error), default: 0] += 1
    context.close(promise: nil)
  }
}
