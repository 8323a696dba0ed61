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
    try fill()
    var version: String? = nil
    var sawShops = false
    var sawKeys = false
    var errors = SnapshotParser.FieldErrors()

    try unit { (r) throws(JSONReader.ParseError) in try r.expect(UInt8(ascii: "{")) }
    var more = try unit { (r) throws(JSONReader.ParseError) -> Bool in !(try r.consume(UInt8(ascii: "}"))) }
    while more {
      let key = try unit { (r) throws(JSONReader.ParseError) -> String in
        guard try r.peek() == UInt8(ascii: "\"") else { throw r.error("expected an object key") }
        let k = try r.readString()
        try r.expect(UInt8(ascii: ":"))
        return k
      }
      switch key {
      case "version":
        let v = try unit { (r) throws(JSONReader.ParseError) -> String? in
          if try r.peek() == UInt8(ascii: "\"") { return try r.readString() }
          try r.skipValue()
          return nil
        }
        if let v { version = v } else { errors.add("version must be a string") }
      case "shops", "apiKeys":
        let isShops = key == "shops"
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
          errors.add("\(key) must be an array")
          break
        }
        var index = 0
        var elements = try unit { (r) throws(JSONReader.ParseError) -> Bool in !(try r.consume(UInt8(ascii: "]"))) }
        while elements {
          if isShops {
            let (shop, local) = try unit { (r) throws(JSONReader.ParseError) -> (SnapshotParser.ParsedShop?, SnapshotParser.FieldErrors) in
              var local = SnapshotParser.FieldErrors()
              let s = try SnapshotParser.parseShop(&r, index: index, errors: &local)
              return (s, local)
            }
            errors.merge(local)
            shop?.add(to: &builder)  // before the next unit: the slices point into the window
          } else {
            let (k, local) = try unit { (r) throws(JSONReader.ParseError) -> (SnapshotParser.ParsedKey?, SnapshotParser.FieldErrors) in
              var local = SnapshotParser.FieldErrors()
              let k = try SnapshotParser.parseKey(&r, index: index, errors: &local)
              return (k, local)
            }
            errors.merge(local)
            k?.add(to: &builder)
          }
          index += 1
          entries += 1
          elements = try unit { (r) throws(JSONReader.ParseError) -> Bool in
            if try r.consume(UInt8(ascii: ",")) { return true }
            try r.expect(UInt8(ascii: "]"))
            return false
          }
        }
      default:
        try unit { (r) throws(JSONReader.ParseError) in try r.skipValue() }
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
    builder.version = version ?? ""
    var table: TenantTable? = nil
    var semantic: [SnapshotValidationError.Violation] = []
    do { table = try builder.finish() } catch { semantic = error.violations }
    let all = (errors.error?.violations ?? []) + semantic
    guard all.isEmpty, let table else { throw .invalid(SnapshotValidationError(violations: all)) }
    return table
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
