import Foundation
import GatewayCore

/// Parses a snapshot from a file through a fixed-size window, so a reload never holds the whole
/// document in memory: a ~700 MB snapshot of a million shops is read 4 MiB at a time (the window
/// grows only for a single element larger than it).
///
/// The document is walked one *unit* at a time — the opening brace, a key, one array element, a
/// separator. A unit is parsed by a ``JSONReader`` over the bytes in the window; if it runs into the
/// end of the window before the end of the file, the window is refilled and the unit parsed again
/// from its start. Units have no side effects until they complete (`parseShop`/`parseKey` return
/// values; the builder is fed afterwards), which is what makes the retry safe.
public struct SnapshotStreamParser {
  /// Bytes read per refill; also the initial window.
  public static let windowSize = 4 << 20

  private var window: UnsafeMutableRawBufferPointer
  private var start = 0
  private var end = 0
  private var eof = false
  /// File offset of `window[0]`, for error messages.
  private var base = 0
  private let fd: Int32
  private let chunk: Int

  /// Length of the unit parsed last; its bytes end at `start`.
  private var lastUnitLength = 0
  /// Bytes read so far (for statistics).
  public private(set) var bytesRead = 0
  /// Shops and keys read so far.
  private var entries = 0
  private var totalBytes = 0
  private var progress: SnapshotLoadProgress.Handler?
  private var progressInterval = SnapshotLoadProgress.interval
  private let started = Date()
  private var lastReport = Date()

  init(fd: Int32, windowSize: Int) {
    self.fd = fd
    self.chunk = windowSize
    window = .allocate(byteCount: windowSize, alignment: 16)
  }

  /// Parses and validates the snapshot file at `path`.
  /// - Parameter windowSize: bytes per read (small values are for tests of the refill logic).
  public static func parse(
    path: String, platform: PlatformHosts?, seed: UInt64 = UInt64.random(in: 1...UInt64.max), windowSize: Int = windowSize,
    progress: SnapshotLoadProgress.Handler? = nil, progressInterval: Double = SnapshotLoadProgress.interval
  ) throws(SnapshotError) -> TenantTable {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
    defer { close(fd) }
    var st = stat()
    if fstat(fd, &st) == 0, (st.st_mode & S_IFMT) != S_IFREG {
      throw .unreadable(path: path, reason: "not a regular file")
    }
    var parser = SnapshotStreamParser(fd: fd, windowSize: max(16, windowSize))
    defer { parser.window.deallocate() }
    var builder = TenantTableBuilder(platform: platform, seed: seed)
    let size = Int(st.st_size)
    parser.totalBytes = size
    parser.progress = progress
    parser.progressInterval = progressInterval
    builder.reserve(shops: size / 1000, keys: size / 700)
    return try parser.run(into: &builder, path: path)
  }

  private mutating func fill() throws(SnapshotError) {
    // Compact: move the unparsed tail to the front.
    if start > 0 {
      let n = end - start
      if n > 0 { window.baseAddress!.copyMemory(from: window.baseAddress! + start, byteCount: n) }
      base += start
      end = n
      start = 0
    }
    // Grow if the window is full (one element larger than the window).
    if end == window.count {
      let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: window.count * 2, alignment: 16)
      bigger.baseAddress!.copyMemory(from: window.baseAddress!, byteCount: end)
      window.deallocate()
      window = bigger
    }
    while end < window.count {
      let n = read(fd, window.baseAddress! + end, window.count - end)
      if n < 0 && errno == EINTR { continue }
      if n < 0 { throw .unreadable(path: "", reason: String(cString: strerror(errno))) }
      if n == 0 {
        eof = true
        break
      }
      end += n
      bytesRead += n
      if end - start >= chunk { break }
    }
    if let progress {
      let now = Date()
      if now.timeIntervalSince(lastReport) >= progressInterval {
        lastReport = now
        progress(SnapshotLoadProgress(
          bytesRead: bytesRead, totalBytes: totalBytes, entries: entries, elapsed: now.timeIntervalSince(started)))
      }
    }
  }

  /// Parses one unit, refilling and retrying when it reaches the end of the window first.
  private mutating func unit<T>(_ body: (inout JSONReader) throws(JSONReader.ParseError) -> T) throws(SnapshotError) -> T {
    while true {
      var reader = JSONReader(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(window)[start..<end]))
      do {
        let value = try body(&reader)
        start += reader.offset
        lastUnitLength = reader.offset
        return value
      } catch {
        // An error far from the end of the window is a real one: the unit never got there.
        let available = end - start
        if eof || available - error.offset > max(65536, chunk) {
          throw .malformedJSON("malformed JSON at byte \(base + start + error.offset): \(error.reason)")
        }
        try fill()
      }
    }
  }

  mutating func run(into builder: inout TenantTableBuilder, path: String) throws(SnapshotError) -> TenantTable {
    var errors = SnapshotParser.FieldErrors()
    let version = try walk(
      errors: &errors,
      shop: { shop, _ in shop?.add(to: &builder) },  // before the next unit: the slices point into the window
      key: { key, _ in key?.add(to: &builder) })
    builder.version = version ?? ""
    var table: TenantTable? = nil
    var semantic: [SnapshotValidationError.Violation] = []
    do { table = try builder.finish() } catch { semantic = error.violations }
    let all = (errors.error?.violations ?? []) + semantic
    guard all.isEmpty, let table else { throw .invalid(SnapshotValidationError(violations: all)) }
    return table
  }

  /// What ``walk(errors:topLevel:shop:key:)`` reports besides elements.
  enum Event {
    /// A top-level key other than `shops`/`apiKeys`, with its raw value.
    case field(String, UnsafeRawBufferPointer)
    case arrayStart(String)
    case arrayEnd(String)
  }

  /// Walks the document one unit at a time, calling `shop` and `key` with each element parsed and
  /// its raw bytes (valid only during the call), and `event` for the rest; returns `version`.
  mutating func walk(
    errors: inout SnapshotParser.FieldErrors,
    event: (Event) throws -> Void = { _ in },
    shop: (SnapshotParser.ParsedShop?, UnsafeRawBufferPointer) throws -> Void,
    key: (SnapshotParser.ParsedKey?, UnsafeRawBufferPointer) throws -> Void
  ) throws(SnapshotError) -> String? {
    try fill()
    var version: String? = nil
    var sawShops = false
    var sawKeys = false

    /// Calls `body` on the bytes of the unit just parsed (they stay in the window until the next unit).
    func lastUnit<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws(SnapshotError) -> R {
      do {
        return try body(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(window)[(start - lastUnitLength)..<start]))
      } catch let e as SnapshotError {
        throw e
      } catch {
        throw .unreadable(path: "", reason: "\(error)")
      }
    }

    try unit { (r) throws(JSONReader.ParseError) in try r.expect(UInt8(ascii: "{")) }
    var more = try unit { (r) throws(JSONReader.ParseError) -> Bool in !(try r.consume(UInt8(ascii: "}"))) }
    while more {
      let name = try unit { (r) throws(JSONReader.ParseError) -> String in
        guard try r.peek() == UInt8(ascii: "\"") else { throw r.error("expected an object key") }
        let k = try r.readString()
        try r.expect(UInt8(ascii: ":"))
        return k
      }
      switch name {
      case "version":
        let v = try unit { (r) throws(JSONReader.ParseError) -> String? in
          if try r.peek() == UInt8(ascii: "\"") { return try r.readString() }
          try r.skipValue()
          return nil
        }
        if let v { version = v } else { errors.add("version must be a string") }
      case "shops", "apiKeys":
        let isShops = name == "shops"
        if isShops { sawShops = true } else { sawKeys = true }
        let isArray = try unit { (r) throws(JSONReader.ParseError) -> Bool in
          if try r.peek() == UInt8(ascii: "[") {
            try r.expect(UInt8(ascii: "["))
            return true
          }
          try r.skipValue()
          return false
        }
        guard isArray else {
          errors.add("\(name) must be an array")
          break
        }
        try lastUnit { _ in try event(.arrayStart(name)) }
        var index = 0
        var elements = try unit { (r) throws(JSONReader.ParseError) -> Bool in !(try r.consume(UInt8(ascii: "]"))) }
        while elements {
          if isShops {
            let (parsed, local) = try unit { (r) throws(JSONReader.ParseError) -> (SnapshotParser.ParsedShop?, SnapshotParser.FieldErrors) in
              var local = SnapshotParser.FieldErrors()
              let s = try SnapshotParser.parseShop(&r, index: index, errors: &local)
              return (s, local)
            }
            errors.merge(local)
            try lastUnit { raw in try shop(parsed, raw) }
          } else {
            let (parsed, local) = try unit { (r) throws(JSONReader.ParseError) -> (SnapshotParser.ParsedKey?, SnapshotParser.FieldErrors) in
              var local = SnapshotParser.FieldErrors()
              let k = try SnapshotParser.parseKey(&r, index: index, errors: &local)
              return (k, local)
            }
            errors.merge(local)
            try lastUnit { raw in try key(parsed, raw) }
          }
          index += 1
          entries += 1
          elements = try unit { (r) throws(JSONReader.ParseError) -> Bool in
            if try r.consume(UInt8(ascii: ",")) { return true }
            try r.expect(UInt8(ascii: "]"))
            return false
          }
        }
        try lastUnit { _ in try event(.arrayEnd(name)) }
      default:
        try unit { (r) throws(JSONReader.ParseError) in try r.skipValue() }
        try lastUnit { raw in try event(.field(name, raw)) }
      }
      more = try unit { (r) throws(JSONReader.ParseError) -> Bool in
        if try r.consume(UInt8(ascii: ",")) { return true }
        try r.expect(UInt8(ascii: "}"))
        return false
      }
    }
    // Only whitespace may follow.
    while true {
      let rest = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(window)[start..<end])
      guard rest.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) else {
        throw .malformedJSON("malformed JSON at byte \(base + start): trailing data after the document")
      }
      start = end
      if eof { break }
      try fill()
    }

    if version == nil { errors.add("version is missing") }
    if !sawShops { errors.add("shops is missing") }
    if !sawKeys { errors.add("apiKeys is missing") }
    return version
  }

  /// Walks the snapshot file at `path` (see ``walk(errors:event:shop:key:)``); throws on malformed
  /// JSON or field errors.
  static func walk(
    path: String, event: (Event) throws -> Void = { _ in },
    shop: (SnapshotParser.ParsedShop?, UnsafeRawBufferPointer) throws -> Void,
    key: (SnapshotParser.ParsedKey?, UnsafeRawBufferPointer) throws -> Void
  ) throws(SnapshotError) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
    defer { close(fd) }
    var parser = SnapshotStreamParser(fd: fd, windowSize: windowSize)
    defer { parser.window.deallocate() }
    var errors = SnapshotParser.FieldErrors()
    let version = try parser.walk(errors: &errors, event: event, shop: shop, key: key)
    if let e = errors.error { throw .invalid(e) }
    return version ?? ""
  }

  /// The snapshot's `version`, read from the start of the file when it comes first (as it does in
  /// every file this gateway writes), else by walking the document.
  public static func version(path: String) throws(SnapshotError) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
    var head = [UInt8](repeating: 0, count: 4096)
    let n = head.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress!, $0.count) }
    close(fd)
    if n > 0 {
      let found = head.withUnsafeBytes { raw -> String? in
        var r = JSONReader(UnsafeRawBufferPointer(rebasing: raw[0..<n]))
        guard (try? r.expect(UInt8(ascii: "{"))) != nil, (try? r.readString()) == "version", (try? r.expect(UInt8(ascii: ":"))) != nil
        else { return nil }
        return try? r.readString()
      }
      if let found { return found }
    }
    return try walk(path: path, shop: { _, _ in }, key: { _, _ in })
  }
}

/// How far a long snapshot load has got (logged every ``interval`` seconds).
public struct SnapshotLoadProgress: Sendable {
  public typealias Handler = @Sendable (SnapshotLoadProgress) -> Void
  /// Seconds between reports.
  public static let interval: Double = 2
  public var bytesRead: Int
  /// The file's size (0 when unknown).
  public var totalBytes: Int
  /// Shops and keys read so far.
  public var entries: Int
  public var elapsed: Double
  public var percent: Int { totalBytes > 0 ? min(100, bytesRead * 100 / totalBytes) : 0 }
  public var entriesPerSecond: Int { elapsed > 0 ? Int(Double(entries) / elapsed) : 0 }
}
