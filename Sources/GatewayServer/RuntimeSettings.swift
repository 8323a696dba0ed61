import GatewayConfig
import GatewayCore
import GatewayUpstream
import NIOCore
import NIOSSL

/// What the data path needs from a ``GatewayConfig``, computed once when the server is built (and
/// never per request): a pure function of the config, so it is tested without a server, a socket
/// or an event loop. Loading files (keys, certificates) is not here; that is I/O.
enum RuntimeSettings {
  /// The settings every connection and request reads.
  static func make(from config: GatewayConfig) -> ServerSettings {
    ServerSettings(
      resolver: config.resolverSettings,
      rewrite: HeaderRewrite(
        tenantHeaderName: config.tenantHeader.name, publishableKeyHeader: config.publishableKeyHeader,
        trustRequestID: config.tenantHeader.trustRequestID, collectCookies: config.sessions != nil,
        stripRequestHeaders: config.policy.stripRequestHeaders),
      limits: RequestLimits(
        maxHeaderBytes: config.limits.maxHeaderBytes, maxHeaderCount: config.limits.maxHeaderCount,
        maxBodyBytes: config.limits.maxBodyBytes, maxURIBytes: config.limits.maxURIBytes),
      clientHeaderTimeout: seconds(config.limits.clientHeaderTimeoutSeconds),
      idleTimeout: seconds(config.limits.idleTimeoutSeconds),
      h2MaxConcurrentStreams: config.limits.h2MaxConcurrentStreams, maxConnections: config.limits.maxConnections,
      preflight: PreflightHeaders(
        allowHeaders: config.cors.allowHeaders, publishableKeyHeader: config.publishableKeyHeader,
        maxAgeSeconds: config.cors.maxAgeSeconds),
      sessionCookieName: config.sessions?.cookieName ?? "session",
      rateLimits: RateLimits(
        perKeyRPS: UInt32(config.limits.perKeyRPS), perShopRPS: UInt32(config.limits.perShopRPS), burst: UInt32(config.limits.burst)))
  }

  /// One endpoint's pool on one of `loops` event loops: the cluster's timeouts, else the global
  /// `limits`; its connection budget split across the loops (at least one each). `tls` is the
  /// cluster's client context (built from files, so passed in).
  static func pool(
    host: String, port: Int, cluster: UpstreamCluster, limits: GatewayConfig.Limits, loops: Int, tls: NIOSSLContext?
  ) -> UpstreamPoolSettings {
    let connect = cluster.connectTimeoutSeconds ?? limits.upstreamConnectTimeoutSeconds
    let response = cluster.responseTimeoutSeconds ?? limits.upstreamResponseTimeoutSeconds
    return UpstreamPoolSettings(
      host: host, port: port, maxConnections: max(1, cluster.maxConnectionsPerEndpoint / max(1, loops)),
      connectTimeout: seconds(connect), responseTimeout: seconds(response),
      // A request waits for a free connection no longer than it would wait to connect.
      queueTimeout: seconds(connect), tls: tls)
  }

  static func seconds(_ s: Double) -> TimeAmount { .nanoseconds(Int64(s * 1e9)) }
}
