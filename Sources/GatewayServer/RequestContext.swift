import GatewayCore
import GatewayObservability
import GatewayUpstream
import NIOCore

/// One request, from the moment its head arrives to its access-log line. Both protocols make one
/// per request (``LoopContext/beginRequest(proto:host:method:uri:connection:userAgent:)``) and
/// every later phase reads it: validate → resolve → authorise → sign → rewrite
/// (``RequestAdmission``), forward (the protocol handler starts an ``Exchange``), respond
/// (``LoopContext/responded(_:status:)`` and ``LoopContext/refused(_:_:bodyBytes:headOnly:)``,
/// then the protocol's framing) and log (``LoopContext/log(_:completed:)``).
///
/// It pins the table the request started with. Admission resolves, signs and rewrites from that
/// table, and the log phase fills the line's shop, key and route from it, so an access-log line
/// cannot disagree with the X-Tenant it logs whatever table swap lands in between (PRODUCT.md §9
/// invariant 6): there is no second read of the current table to disagree with.
struct RequestContext {
  /// The table the request started with.
  let table: TenantTable
  /// The request id: the loop's next one, or a trusted client's `X-Request-Id` (set by admission).
  var requestID: String
  /// When the head arrived (latency metrics and the access log).
  let started: NIODeadline
  /// The shop and credential, once the resolve phase found them.
  var tenant: TenantContext?
  /// Request body bytes received so far.
  var bodyBytes = 0
  /// The access-log line being filled (nil with the access log off: nothing is built for it).
  var log: AccessLogEntry?
}

extension LoopContext {
  /// A request's head arrived: its context, pinned to the current table. `host`, `method`, `uri`
  /// and `userAgent` are only read with the access log on.
  func beginRequest(
    proto: String, host: @autoclosure () -> String?, method: @autoclosure () -> String, uri: @autoclosure () -> String,
    connection: ConnectionInfo, userAgent: @autoclosure () -> String?
  ) -> RequestContext {
    var r = RequestContext(table: tables.current(), requestID: requestIDs.next(), started: .now())
    if accessLog != nil {
      var e = AccessLogEntry()
      e.tlsVersion = connection.tlsVersion
      e.userAgent = userAgent()
      e.proto = proto
      e.host = host() ?? ""
      e.method = method()
      // The query string is left out: it may carry a token or key.
      let target = uri()
      e.path = target.firstIndex(of: "?").map { String(target[..<$0]) } ?? target
      e.client = connection.clientAddress
      r.log = e
    }
    return r
  }

  /// Respond phase, for a status the gateway or the upstream chose (preflight, forwarded head):
  /// counted once here for both protocols.
  func responded(_ r: inout RequestContext, status: Int) {
    counters.recordResponse(status: status)
    r.log?.status = status
  }

  /// Respond phase, for the upstream's response head: counted with its cluster's latency until
  /// the head, and noted in the access-log line with the endpoint that answered.
  func forwardedHead(_ r: inout RequestContext, status: Int, exchange: Exchange) {
    counters.recordResponse(status: status)
    let untilHead = (NIODeadline.now() - r.started).nanoseconds
    counters.recordUpstreamResponse(cluster: exchange.cluster.metricsIndex, status: status, nanos: untilHead)
    guard r.log != nil else { return }
    r.log!.status = status
    r.log!.upstreamNanos = untilHead
    r.log!.upstreamAddress = exchange.endpointName
  }

  /// Respond phase, for a refusal (§4): counted and noted once here for both protocols; the
  /// protocol then frames `RefusalResponse.body`.
  func refused(_ r: inout RequestContext, _ refusal: GatewayRefusal, bodyBytes: Int, headOnly: Bool) {
    counters.recordRefusal(refusal)
    counters.recordResponse(status: refusal.status)
    guard r.log != nil else { return }
    r.log!.status = refusal.status
    r.log!.code = refusal.code
    r.log!.bytesOut = headOnly ? 0 : bodyBytes
  }

  /// Log phase: the request is over (`completed`: its response was written whole). Counts its
  /// latency and body bytes and queues its access-log line, with the tenant read from the table
  /// the request started with.
  func log(_ r: inout RequestContext, completed: Bool) {
    let duration = (NIODeadline.now() - r.started).nanoseconds
    if completed { counters.requestDuration.observe(nanos: duration) }
    counters.requestBodyBytes &+= r.bodyBytes
    guard var e = r.log else { return }
    r.log = nil
    e.requestID = r.requestID
    if let tenant = r.tenant { noteTenant(tenant, table: r.table, in: &e) }
    e.bytesIn = r.bodyBytes
    e.aborted = !completed
    finishLog(&e, durationNanos: duration)
  }

  /// Fills the resolved tenant into an entry, from the table it was resolved in.
  private func noteTenant(_ tenant: TenantContext, table: TenantTable, in e: inout AccessLogEntry) {
    e.shopID = table.shopID(tenant.shop)
    e.auth = tenant.auth.claim
    if let key = tenant.key { e.keyID = table.keyID(key) }
    e.upstream = tenant.upstream
    let routes = resolver.settings.routes.routes
    if tenant.route >= 0 && tenant.route < routes.count { e.route = routes[tenant.route].prefix }
  }
}
