import GatewayCore
import GatewaySnapshot

/// Prometheus text exposition (format 0.0.4) written one family at a time: `# HELP` and `# TYPE`
/// come from the family, label values are always escaped, so a metric is one line of intent
/// rather than three of hand-built text.
struct PrometheusExposition {
  enum Kind: String {
    case counter, gauge, histogram
  }

  private(set) var text = ""

  /// Starts a family: its `# HELP` and `# TYPE` lines.
  mutating func family(_ name: String, _ kind: Kind, _ help: String) {
    text += "# HELP \(name) \(help)\n# TYPE \(name) \(kind.rawValue)\n"
  }

  /// One unlabelled sample of the current family.
  mutating func sample(_ name: String, _ value: some CustomStringConvertible) {
    text += "\(name) \(value)\n"
  }

  /// One sample of the current family.
  mutating func sample(_ name: String, _ labels: KeyValuePairs<String, String>, _ value: some CustomStringConvertible) {
    text += name
    if !labels.isEmpty {
      text += "{"
      var first = true
      for (k, v) in labels {
        if !first { text += "," }
        first = false
        text += "\(k)=\"\(Self.escape(v))\""
      }
      text += "}"
    }
    text += " \(value)\n"
  }

  /// A family with one unlabelled sample.
  mutating func metric(_ name: String, _ kind: Kind, _ help: String, _ value: some CustomStringConvertible) {
    family(name, kind, help)
    sample(name, value)
  }

  /// A family with one label, one sample per value, in the order given.
  mutating func metric(
    _ name: String, _ kind: Kind, _ help: String, label: String, _ values: [(String, some CustomStringConvertible)]
  ) {
    family(name, kind, help)
    for (l, v) in values { sample(name, [label: l], v) }
  }

  /// A histogram family with one unlabelled series.
  mutating func histogram(_ name: String, _ help: String, _ h: LatencyHistogram) {
    family(name, .histogram, help)
    histogramSeries(name, labels: "", h)
  }

  /// One histogram's buckets, sum and count; `labels` (`cluster="x"`, escaped) go before `le`.
  mutating func histogramSeries(_ name: String, labels: String, _ h: LatencyHistogram) {
    let prefix = labels.isEmpty ? "" : labels + ","
    let only = labels.isEmpty ? "" : "{\(labels)}"
    var cumulative = 0
    for (i, bound) in LatencyHistogram.bounds.enumerated() {
      cumulative += h.counts[i]
      text += "\(name)_bucket{\(prefix)le=\"\(bound)\"} \(cumulative)\n"
    }
    cumulative += h.counts[LatencyHistogram.bounds.count]
    text += "\(name)_bucket{\(prefix)le=\"+Inf\"} \(cumulative)\n"
    text += "\(name)_sum\(only) \(Double(h.sumNanos) / 1e9)\n"
    text += "\(name)_count\(only) \(cumulative)\n"
  }

  /// A label value's escaping: backslash, double quote and newline.
  static func escape(_ s: String) -> String {
    s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
  }
}

/// `GET /metrics`: the gateway's counters, snapshot status and endpoint health as Prometheus text.
public enum PrometheusText {
  public static func render(
    _ c: CounterSnapshot, snapshot s: SnapshotStatus,
    endpoints: [(cluster: String, endpoint: String, healthy: Bool, ejections: Int)] = [], process: ProcessStats? = nil
  ) -> String {
    var m = PrometheusExposition()
    m.family("tenant_gateway_build_info", .gauge, "The running build (value 1).")
    m.sample("tenant_gateway_build_info", ["version": BuildInfo.version, "swift": BuildInfo.swiftVersion], 1)
    let p = process ?? ProcessStats.read()
    m.metric("process_resident_memory_bytes", .gauge, "Resident memory size in bytes.", p.residentMemoryBytes)
    m.metric("process_virtual_memory_bytes", .gauge, "Virtual memory size in bytes.", p.virtualMemoryBytes)
    m.metric("process_cpu_seconds_total", .counter, "Total user and system CPU time spent in seconds.", p.cpuSeconds)
    m.metric("process_open_fds", .gauge, "Number of open file descriptors.", p.openFDs)
    m.metric("process_max_fds", .gauge, "Maximum number of open file descriptors.", p.maxFDs)
    m.metric("process_start_time_seconds", .gauge, "Start time of the process since unix epoch in seconds.", p.startTimeSeconds)
    m.metric(
      "tenant_gateway_requests_total", .counter, "Responses sent to clients, by status class.", label: "code_class",
      (1...5).map { ("\($0)xx", c.responsesByClass[$0]) })
    m.metric(
      "tenant_gateway_refusals_total", .counter, "Requests the gateway answered itself, by refusal code.", label: "code",
      GatewayRefusal.all.map { ($0.code, c.refusals[$0.code] ?? 0) })
    upstreams(c, into: &m)
    m.metric("tenant_gateway_connections_accepted_total", .counter, "Client connections accepted on the TLS listener.", c.connectionsAccepted)
    m.metric(
      "tenant_gateway_proxy_protocol_refused_total", .counter, "Connections closed for the PROXY protocol, by reason.", label: "reason",
      ["malformed", "untrusted"].map { ($0, c.proxyProtocolRefused[$0] ?? 0) })
    m.metric("tenant_gateway_request_body_bytes_total", .counter, "Request body bytes received from clients.", c.requestBodyBytes)
    m.metric(
      "tenant_gateway_response_body_bytes_total", .counter, "Response body bytes sent to clients (upstream bodies).", c.responseBodyBytes)
    m.metric(
      "tenant_gateway_open_connections", .gauge, "Open client connections, by protocol.", label: "protocol",
      [("http1", c.openHTTP1Connections), ("http2", c.openHTTP2Connections)])
    m.metric(
      "tenant_gateway_tls_handshakes_total", .counter, "Completed TLS handshakes.", label: "version",
      [("TLSv1.2", c.tlsHandshakesByVersion[0]), ("TLSv1.3", c.tlsHandshakesByVersion[1])])
    m.metric(
      "tenant_gateway_tls_handshake_failures_total", .counter, "Failed TLS handshakes, by reason.", label: "reason",
      ["alpn", "certificate", "closed", "no_shared_cipher", "other", "plain_http", "protocol_version"].map {
        ($0, c.tlsFailuresByReason[$0] ?? 0)
      })
    if let expiry = c.soonestCertificateExpiry {
      m.metric(
        "tenant_gateway_certificate_expiry_timestamp_seconds", .gauge, "The soonest notAfter of the configured certificates.", Int(expiry))
    }
    m.metric("tenant_gateway_connections_refused_total", .counter, "Connections closed at max_connections.", c.connectionsRefusedAtLimit)
    m.histogram("tenant_gateway_request_duration_seconds", "From the request head to the end of the response.", c.requestDuration)
    m.family(
      "tenant_gateway_upstream_response_seconds", .histogram, "From the request head to the upstream's response head, by cluster.")
    for (name, cluster) in c.clusters.sorted(by: { $0.key < $1.key }) {
      m.histogramSeries("tenant_gateway_upstream_response_seconds", labels: "cluster=\"\(PrometheusExposition.escape(name))\"", cluster.latency)
    }
    m.metric(
      "tenant_gateway_shop_requests_top", .gauge, "Requests of the busiest shops (bounded top-K, upper bounds per event loop).",
      label: "shop_id",
      Array(c.topShops.sorted(by: { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }).prefix(10)).map { ($0.key, $0.value) })
    certificates(c, into: &m)
    if !c.plainHTTP.isEmpty {
      m.metric(
        "tenant_gateway_plain_http_responses_total", .counter, "Answers of the plain-HTTP listener, by kind.", label: "kind",
        c.plainHTTP.sorted(by: { $0.key < $1.key }).map { ($0.key, $0.value) })
    }
    if let log = c.accessLog {
      m.metric("tenant_gateway_access_log_lines_total", .counter, "Access-log lines queued for writing.", log.written)
      m.metric("tenant_gateway_access_log_dropped_total", .counter, "Access-log lines dropped because the writer fell behind.", log.dropped)
      m.metric("tenant_gateway_access_log_reopens_total", .counter, "Access-log reopens (SIGUSR1).", c.accessLogReopens)
    }
    snapshot(s, into: &m)
    m.family("tenant_gateway_upstream_endpoint_healthy", .gauge, "1 when the endpoint takes requests.")
    for e in endpoints {
      m.sample("tenant_gateway_upstream_endpoint_healthy", ["cluster": e.cluster, "endpoint": e.endpoint], e.healthy ? 1 : 0)
    }
    m.family("tenant_gateway_upstream_endpoint_ejections_total", .counter, "Times the endpoint was taken out.")
    for e in endpoints {
      m.sample("tenant_gateway_upstream_endpoint_ejections_total", ["cluster": e.cluster, "endpoint": e.endpoint], e.ejections)
    }
    return m.text
  }

  private static func upstreams(_ c: CounterSnapshot, into m: inout PrometheusExposition) {
    let clusters = c.clusters.sorted(by: { $0.key < $1.key })
    m.family("tenant_gateway_upstream_errors_total", .counter, "Upstream faults, by cluster and kind.")
    for (name, cluster) in clusters {
      for (k, v) in cluster.errors.sorted(by: { $0.key < $1.key }) {
        m.sample("tenant_gateway_upstream_errors_total", ["cluster": name, "kind": k], v)
      }
    }
    m.family("tenant_gateway_upstream_responses_total", .counter, "Upstream response heads, by cluster and status class.")
    for (name, cluster) in clusters {
      for i in 1...5 {
        m.sample("tenant_gateway_upstream_responses_total", ["cluster": name, "code_class": "\(i)xx"], cluster.responsesByClass[i])
      }
    }
    m.family("tenant_gateway_upstream_connections", .gauge, "Upstream pool connections, by cluster and state.")
    for (name, cluster) in clusters {
      m.sample("tenant_gateway_upstream_connections", ["cluster": name, "state": "open"], cluster.openConnections)
      m.sample("tenant_gateway_upstream_connections", ["cluster": name, "state": "idle"], cluster.idleConnections)
    }
    m.family("tenant_gateway_upstream_pending_requests", .gauge, "Requests waiting for an upstream connection, by cluster.")
    for (name, cluster) in clusters {
      m.sample("tenant_gateway_upstream_pending_requests", ["cluster": name], cluster.pendingRequests)
    }
  }

  private static func certificates(_ c: CounterSnapshot, into m: inout PrometheusExposition) {
    if let certs = c.customCertificates {
      m.metric(
        "tenant_gateway_custom_certificates", .gauge, "Custom-domain certificates: domains with files, TLS contexts cached.",
        label: "state", [("available", certs.domains), ("cached", certs.cached)])
      m.metric(
        "tenant_gateway_custom_certificate_lookups_total", .counter, "Handshakes for custom domains, by outcome.", label: "result",
        [("cached", certs.hits), ("loaded", certs.loads), ("failed", certs.failures)])
    }
    guard let acme = c.acme else { return }
    m.metric(
      "tenant_gateway_acme_certificates", .gauge, "Custom domains known to ACME, by state (PRODUCT.md §10).", label: "state",
      acme.byState.sorted(by: { $0.key < $1.key }).map { ($0.key, $0.value) })
    m.metric(
      "tenant_gateway_acme_orders_total", .counter, "ACME orders by result.", label: "result",
      acme.orders.sorted(by: { $0.key < $1.key }).map { ($0.key, $0.value) })
    m.metric("tenant_gateway_acme_orders_running", .gauge, "ACME orders in progress.", acme.running)
    if let soonest = acme.soonestNotAfter {
      m.metric(
        "tenant_gateway_acme_certificate_expiry_seconds", .gauge, "The soonest notAfter of a served ACME certificate (Unix time).",
        Int(soonest))
    }
    m.metric(
      "tenant_gateway_acme_storage_reads_total", .counter,
      "Files read from storage_dir for handshakes and challenges (a name the table does not map never causes one).", acme.storageReads)
    m.metric(
      "tenant_gateway_acme_challenge_handshakes_total", .counter,
      "tls-alpn-01 handshakes: answered with a challenge certificate, or closed (no challenge pending).", label: "result",
      [("answered", c.acmeChallengeHandshakes), ("refused", c.acmeChallengeRefused)])
  }

  private static func snapshot(_ s: SnapshotStatus, into m: inout PrometheusExposition) {
    m.family("tenant_gateway_snapshot_info", .gauge, "The serving snapshot's version.")
    m.sample("tenant_gateway_snapshot_info", ["version": s.version], 1)
    m.metric(
      "tenant_gateway_snapshot_entries", .gauge, "Entries in the serving snapshot.", label: "kind",
      [("shops", s.shops), ("custom_domains", s.customDomains), ("keys", s.keys)])
    m.metric("tenant_gateway_snapshot_loaded_timestamp_seconds", .gauge, "When the serving snapshot was loaded.", Int(s.loadedAt))
    m.metric(
      "tenant_gateway_snapshot_reloads_total", .counter, "Snapshot loads, by result.", label: "result",
      [("accepted", s.accepted), ("rejected", s.rejected)])
    m.metric(
      "tenant_gateway_change_sets_total", .counter, "Change sets (PRODUCT.md §6), by result.", label: "result",
      [("applied", s.changeSetsApplied), ("refused", s.changeSetsRefused)])
    m.metric(
      "tenant_gateway_change_last_applied_timestamp_seconds", .gauge, "When the last change set was applied.", s.lastChangeAt ?? 0)
    m.metric(
      "tenant_gateway_overlay_entries", .gauge, "Shops held by the overlay over the base table, and base shops it hides.", label: "kind",
      [("shops", s.overlayShops), ("hidden", s.overlayHidden)])
    m.metric("tenant_gateway_overlay_folds_total", .counter, "Overlays folded into a new base table.", s.folds)
    m.metric("tenant_gateway_journal_compactions_total", .counter, "Journal compactions by the gateway.", s.compactions)
    m.metric(
      "tenant_gateway_source_connected", .gauge, "1 when the database source is connected (0 while reconnecting).",
      s.sourceState == nil || s.sourceState == "connected" ? 1 : 0)
    m.metric("tenant_gateway_source_last_seq", .gauge, "The last outbox seq read from the database source.", s.lastSeq ?? 0)
    m.metric("tenant_gateway_source_resyncs_total", .counter, "Whole re-reads of the database source.", s.resyncs)
    m.metric(
      "tenant_gateway_source_refused_entities", .gauge, "Database rows refused (each keeps its previous record).", s.refusedEntities.count)
    m.metric(
      "tenant_gateway_change_lag_seconds", .gauge, "Commit (outbox insert) to served, for the last change set.",
      s.lastChangeLagSeconds ?? 0)
    m.metric("tenant_gateway_journal_bytes", .gauge, "Size of the change journal.", s.journalBytes)
  }
}
