import Atomics
import Foundation
import GatewayCore

/// One request's access-log line (PRODUCT.md §8). Holds no credential: the key is named by its
/// snapshot id only, and the path is logged without its query string (a query may carry a token).
public struct AccessLogEntry {
  public var requestID = ""
  public var client = ""
  /// `h1` or `h2`.
  public var proto = ""
  public var host = ""
  public var method = ""
  public var path = ""
  public var status = 0
  /// The §4 refusal code, when the gateway answered itself.
  public var code: String?
  public var shopID: String?
  public var auth: String?
  public var keyID: String?
  /// Upstream cluster name.
  public var upstream: String?
  /// The endpoint that answered (`http://10.0.0.5:8080`).
  public var upstreamAddress: String?
  /// The route prefix the path matched (`/v1/admin/`).
  public var route: String?
  /// `TLSv1.2` or `TLSv1.3`.
  public var tlsVersion: String?
  public var userAgent: String?
  public var bytesIn = 0
  public var bytesOut = 0
  /// Nanoseconds from the request head to the end of the response.
  public var durationNanos: Int64 = 0
  /// Nanoseconds from the request head to the upstream's response head (0: no upstream).
  public var upstreamNanos: Int64 = 0
  /// The response did not complete (reset, closed, timed out after it started).
  public var aborted = false

  public init() {}

  /// Appends the JSON line (with its newline).
  public func write(to out: inout [UInt8], unixMillis: Int64) {
    out.append(contentsOf: #"{"time":""#.utf8)
    Self.appendRFC3339(unixMillis, to: &out)
    out.append(contentsOf: #"","request_id":"#.utf8)
    JSONText.appendQuotedSlow(bytes: requestID.utf8, to: &out)
    field("client", client, &out)
    field("protocol", proto, &out)
    field("host", host, &out)
    field("method", method, &out)
    field("path", path, &out)
    out.append(contentsOf: #","status":"#.utf8)
    out.append(contentsOf: String(status).utf8)
    if let code { field("code", code, &out) }
    if let shopID { field("shop_id", shopID, &out) }
    if let auth { field("auth", auth, &out) }
    if let keyID { field("key_id", keyID, &out) }
    if let upstream { field("upstream", upstream, &out) }
    if let upstreamAddress { field("upstream_addr", upstreamAddress, &out) }
    if let route { field("route", route, &out) }
    if let tlsVersion { field("tls", tlsVersion, &out) }
    if let userAgent { field("user_agent", userAgent, &out) }
    out.append(contentsOf: #","bytes_in":"#.utf8)
    out.append(contentsOf: String(bytesIn).utf8)
    out.append(contentsOf: #","bytes_out":"#.utf8)
    out.append(contentsOf: String(bytesOut).utf8)
    out.append(contentsOf: #","duration_ms":"#.utf8)
    Self.appendMillis(durationNanos, to: &out)
    if upstreamNanos > 0 {
      out.append(contentsOf: #","upstream_ms":"#.utf8)
      Self.appendMillis(upstreamNanos, to: &out)
    }
    if aborted { out.append(contentsOf: #","aborted":true"#.utf8) }
    out.append(contentsOf: "}\n".utf8)
  }

  private func field(_ name: String, _ value: String, _ out: inout [UInt8]) {
    out.append(UInt8(ascii: ","))
    out.append(UInt8(ascii: "\""))
    out.append(contentsOf: name.utf8)
    out.append(contentsOf: "\":".utf8)
    JSONText.appendQuotedSlow(bytes: value.utf8, to: &out)
  }

  /// Milliseconds with three decimals.
  static func appendMillis(_ nanos: Int64, to out: inout [UInt8]) {
    let micros = max(0, nanos) / 1000
    out.append(contentsOf: String(micros / 1000).utf8)
    out.append(UInt8(ascii: "."))
    let frac = String(micros % 1000)
    for _ in frac.count..<3 { out.append(UInt8(ascii: "0")) }
    out.append(contentsOf: frac.utf8)
  }

  /// `2026-12-01T22:03:02.123Z`.
  static func appendRFC3339(_ unixMillis: Int64, to out: inout [UInt8]) {
    var t = time_t(unixMillis / 1000)
    var tm = tm()
    gmtime_r(&t, &tm)
    func two(_ v: Int32) {
      out.append(UInt8(ascii: "0") + UInt8(v / 10 % 10))
      out.append(UInt8(ascii: "0") + UInt8(v % 10))
    }
    let year = Int(tm.tm_year) + 1900
    out.append(contentsOf: String(year).utf8)
    out.append(UInt8(ascii: "-")); two(tm.tm_mon + 1)
    out.append(UInt8(ascii: "-")); two(tm.tm_mday)
    out.append(UInt8(ascii: "T")); two(tm.tm_hour)
    out.append(UInt8(ascii: ":")); two(tm.tm_min)
    out.append(UInt8(ascii: ":")); two(tm.tm_sec)
    let ms = Int32(unixMillis % 1000)
    out.append(UInt8(ascii: "."))
    out.append(UInt8(ascii: "0") + UInt8(ms / 100))
    two(ms % 100)
    out.append(UInt8(ascii: "Z"))
  }
}

/// Writes access-log lines on its own thread. Event loops never block on it: each loop fills a
/// local ``AccessLogBuffer`` and hands over whole batches; when more than `maxQueuedBytes` are
/// waiting (a slow disk, a blocked stdout pipe) a batch is dropped and its lines are counted in
/// `tenant_gateway_access_log_dropped_total` instead.
public final class AccessLogWriter: @unchecked Sendable {
  private let fd: Int32
  private let ownsFD: Bool
  private let maxQueuedBytes: Int
  private let condition = NSCondition()
  private var queue: [[UInt8]] = []
  private var queuedBytes = 0
  private var stopping = false
  /// Lines dropped because the writer fell behind.
  public let droppedLines = ManagedAtomic<Int>(0)
  public let writtenLines = ManagedAtomic<Int>(0)
  private var thread: Thread?
  private let stopped = DispatchSemaphore(value: 0)
  private let path: String
  /// Set by ``reopen()``; the writer thread reopens after writing what is queued.
  private var reopenRequested = false
  /// Reopens done (for `/metrics` and the tests).
  public let reopens = ManagedAtomic<Int>(0)

  /// `path` "-" is standard output; anything else is a file opened for appending.
  public init(path: String, maxQueuedBytes: Int = 8 << 20) throws {
    self.path = path
    if path == "-" {
      fd = STDOUT_FILENO
      ownsFD = false
    } else {
      let f = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
      guard f >= 0 else { throw AccessLogError(message: "cannot open access log \(path): \(String(cString: strerror(errno)))") }
      fd = f
      ownsFD = true
    }
    self.maxQueuedBytes = maxQueuedBytes
  }

  public func start() {
    let t = Thread { [self] in run() }
    t.name = "access-log"
    t.start()
    thread = t
  }

  /// Hands a batch of whole lines to the writer thread (never waits for I/O; the lock is held
  /// for an append, once per batch rather than per request).
  public func submit(_ batch: [UInt8], lines: Int) {
    condition.lock()
    if queuedBytes + batch.count > maxQueuedBytes {
      condition.unlock()
      droppedLines.wrappingIncrement(by: lines, ordering: .relaxed)
      return
    }
    queue.append(batch)
    queuedBytes += batch.count
    condition.signal()
    condition.unlock()
    writtenLines.wrappingIncrement(by: lines, ordering: .relaxed)
  }

  /// Reopens the file at `path` (SIGUSR1, after logrotate renamed it): lines queued before go to
  /// the old file, lines after to the new one. Standard output is left alone.
  public func reopen() {
    guard ownsFD else { return }
    condition.lock()
    reopenRequested = true
    condition.signal()
    condition.unlock()
  }

  /// Writes what is queued and stops the thread.
  public func stop() {
    guard thread != nil else { return }
    condition.lock()
    stopping = true
    condition.signal()
    condition.unlock()
    _ = stopped.wait(timeout: .now() + 5)
    thread = nil
  }

  private func run() {
    while true {
      condition.lock()
      while queue.isEmpty && !stopping && !reopenRequested { condition.wait() }
      let batches = queue
      let done = stopping
      let reopen = reopenRequested
      reopenRequested = false
      queue.removeAll(keepingCapacity: true)
      queuedBytes = 0
      condition.unlock()
      for b in batches { writeAll(b) }
      if reopen {
        // The same descriptor number, pointed at the new file: nothing else holds a stale copy.
        let f = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        if f >= 0 {
          dup2(f, fd)
          close(f)
          reopens.wrappingIncrement(ordering: .relaxed)
        }
      }
      if done {
        if ownsFD { close(fd) }
        stopped.signal()
        return
      }
    }
  }

  private func writeAll(_ bytes: [UInt8]) {
    bytes.withUnsafeBytes { raw in
      var offset = 0
      while offset < raw.count {
        let n = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
        if n < 0 {
          if errno == EINTR { continue }
          return  // a broken log sink must not take the gateway down
        }
        offset += n
      }
    }
  }
}

public struct AccessLogError: Error, CustomStringConvertible {
  public var message: String
  public var description: String { message }
}

/// One event loop's pending access-log lines, handed to the writer in batches (at 32 KiB, and on
/// every deadline sweep so a quiet gateway still logs within a quarter second).
public struct AccessLogBuffer {
  public let writer: AccessLogWriter
  private var bytes: [UInt8] = []
  private var lines = 0
  static let batchBytes = 32 * 1024

  public init(writer: AccessLogWriter) {
    self.writer = writer
    bytes.reserveCapacity(Self.batchBytes + 1024)
  }

  public mutating func append(_ entry: AccessLogEntry, unixMillis: Int64) {
    entry.write(to: &bytes, unixMillis: unixMillis)
    lines += 1
    if bytes.count >= Self.batchBytes { flush() }
  }

  public mutating func flush() {
    guard lines > 0 else { return }
    writer.submit(bytes, lines: lines)
    bytes.removeAll(keepingCapacity: true)
    lines = 0
  }
}
