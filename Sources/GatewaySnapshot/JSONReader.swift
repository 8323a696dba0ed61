import Foundation

/// A strict, allocation-light JSON reader (RFC 8259) over a byte buffer, read front to back.
///
/// The snapshot can be hundreds of megabytes: rather than building a tree of `Any` values (what
/// `JSONSerialization` does) it lets the snapshot parser walk the document and keep only the fields
/// it knows, skipping the rest. Strings become `String`s only when asked for.
struct JSONReader {
  struct ParseError: Error, CustomStringConvertible {
    var offset: Int
    var reason: String
    var description: String { "malformed JSON at byte \(offset): \(reason)" }
  }

  let bytes: UnsafeRawBufferPointer
  private(set) var offset = 0
  /// Nesting limit for skipped values, so a hostile document cannot exhaust the stack.
  static let maxDepth = 64

  init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

  func error(_ reason: String) -> ParseError { ParseError(offset: offset, reason: reason) }

  mutating func skipWhitespace() {
    while offset < bytes.count {
      switch bytes[offset] {
      case 0x20, 0x0A, 0x0D, 0x09: offset += 1
      default: return
      }
    }
  }

  /// The next non-whitespace byte without consuming it.
  mutating func peek() throws(ParseError) -> UInt8 {
    skipWhitespace()
    guard offset < bytes.count else { throw error("unexpected end of document") }
    return bytes[offset]
  }

  mutating func expect(_ c: UInt8) throws(ParseError) {
    guard try peek() == c else { throw error("expected '\(Character(UnicodeScalar(c)))'") }
    offset += 1
  }

  /// Consumes `c` if it is next.
  mutating func consume(_ c: UInt8) throws(ParseError) -> Bool {
    if try peek() == c {
      offset += 1
      return true
    }
    return false
  }

  /// After the last value: only whitespace may follow.
  mutating func expectEnd() throws(ParseError) {
    skipWhitespace()
    guard offset == bytes.count else { throw error("trailing data after the document") }
  }

  /// Iterates an object's members: `body` is called with each key and must consume the value.
  mutating func readObject(_ body: (inout JSONReader, String) throws(ParseError) -> Void) throws(ParseError) {
    try expect(UInt8(ascii: "{"))
    if try consume(UInt8(ascii: "}")) { return }
    repeat {
      guard try peek() == UInt8(ascii: "\"") else { throw error("expected an object key") }
      let key = try readString()
      try expect(UInt8(ascii: ":"))
      try body(&self, key)
    } while try consume(UInt8(ascii: ","))
    try expect(UInt8(ascii: "}"))
  }

  /// Like ``readObject(_:)`` with the key as bytes (no `String` per key on the hot path).
  mutating func readObjectKeyBytes(_ body: (inout JSONReader, UnsafeRawBufferPointer) throws(ParseError) -> Void) throws(ParseError) {
    try expect(UInt8(ascii: "{"))
    if try consume(UInt8(ascii: "}")) { return }
    repeat {
      guard try peek() == UInt8(ascii: "\"") else { throw error("expected an object key") }
      let key = try readStringBytes()
      try expect(UInt8(ascii: ":"))
      switch key {
      case .slice(let bytes): try body(&self, bytes)
      case .owned(let array):
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: array.count, alignment: 1)
        defer { copy.deallocate() }
        copy.copyBytes(from: array)
        try body(&self, UnsafeRawBufferPointer(copy))
      }
    } while try consume(UInt8(ascii: ","))
    try expect(UInt8(ascii: "}"))
  }

  /// Byte-wise equality with a literal.
  @inline(__always)
  static func equals(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
    let n = literal.utf8CodeUnitCount
    guard bytes.count == n else { return false }
    return literal.withUTF8Buffer { l in memcmp(bytes.baseAddress!, l.baseAddress!, n) == 0 }
  }

  /// Iterates an array's elements: `body` is called with each index and must consume the element.
  mutating func readArray(_ body: (inout JSONReader, Int) throws(ParseError) -> Void) throws(ParseError) {
    try expect(UInt8(ascii: "["))
    if try consume(UInt8(ascii: "]")) { return }
    var i = 0
    repeat {
      try body(&self, i)
      i += 1
    } while try consume(UInt8(ascii: ","))
    try expect(UInt8(ascii: "]"))
  }

  /// A string value: a slice of the input when it has no escapes (the common case: no copy, no
  /// allocation), else the decoded bytes.
  enum StringBytes {
    case slice(UnsafeRawBufferPointer)
    case owned([UInt8])

    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
      switch self {
      case .slice(let s): return try body(s)
      case .owned(let a): return try a.withUnsafeBytes(body)
      }
    }

    var string: String { withBytes { String(decoding: $0, as: UTF8.self) } }
  }

  /// Reads a string value without building a `String`. UTF-8 is validated.
  mutating func readStringBytes() throws(ParseError) -> StringBytes {
    try expect(UInt8(ascii: "\""))
    let start = offset
    var ascii = true
    while offset < bytes.count {
      let b = bytes[offset]
      if b == UInt8(ascii: "\"") {
        let slice = UnsafeRawBufferPointer(rebasing: bytes[start..<offset])
        offset += 1
        if !ascii && String(validating: slice, as: UTF8.self) == nil { throw error("invalid UTF-8 in string") }
        return .slice(slice)
      }
      if b == UInt8(ascii: "\\") { break }
      if b < 0x20 { throw error("control character in string") }
      if b >= 0x80 { ascii = false }
      offset += 1
    }
    // Escapes: decode through the String path (rare in snapshots).
    offset = start - 1
    return .owned(Array(try readString().utf8))
  }

  /// Reads a string value, decoding escapes and validating UTF-8.
  mutating func readString() throws(ParseError) -> String {
    try expect(UInt8(ascii: "\""))
    let start = offset
    // Fast path: no escapes.
    while offset < bytes.count {
      let b = bytes[offset]
      if b == UInt8(ascii: "\"") {
        let slice = UnsafeRawBufferPointer(rebasing: bytes[start..<offset])
        offset += 1
        guard let s = String(validating: slice, as: UTF8.self) else { throw error("invalid UTF-8 in string") }
        return s
      }
      if b == UInt8(ascii: "\\") { break }
      if b < 0x20 { throw error("control character in string") }
      offset += 1
    }
    // Slow path with escapes.
    var out = [UInt8](UnsafeRawBufferPointer(rebasing: bytes[start..<offset]))
    while offset < bytes.count {
      let b = bytes[offset]
      offset += 1
      switch b {
      case UInt8(ascii: "\""):
        guard let s = String(validating: out, as: UTF8.self) else { throw error("invalid UTF-8 in string") }
        return s
      case UInt8(ascii: "\\"):
        guard offset < bytes.count else { break }
        let e = bytes[offset]
        offset += 1
        switch e {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
          var scalar = try readHex4()
          if scalar >= 0xD800 && scalar < 0xDC00 {
            guard offset + 1 < bytes.count, bytes[offset] == UInt8(ascii: "\\"), bytes[offset + 1] == UInt8(ascii: "u")
            else { throw error("unpaired surrogate") }
            offset += 2
            let low = try readHex4()
            guard low >= 0xDC00 && low < 0xE000 else { throw error("unpaired surrogate") }
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
          } else if scalar >= 0xDC00 && scalar < 0xE000 {
            throw error("unpaired surrogate")
          }
          guard let u = Unicode.Scalar(scalar) else { throw error("invalid escape") }
          out.append(contentsOf: Array(String(Character(u)).utf8))
        default:
          throw error("invalid escape")
        }
      default:
        if b < 0x20 { throw error("control character in string") }
        out.append(b)
      }
    }
    throw error("unterminated string")
  }

  private mutating func readHex4() throws(ParseError) -> UInt32 {
    guard offset + 4 <= bytes.count else { throw error("short \\u escape") }
    var v: UInt32 = 0
    for _ in 0..<4 {
      let c = bytes[offset]
      offset += 1
      let n: UInt32
      switch c {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): n = UInt32(c - UInt8(ascii: "0"))
      case UInt8(ascii: "a")...UInt8(ascii: "f"): n = UInt32(c - UInt8(ascii: "a") + 10)
      case UInt8(ascii: "A")...UInt8(ascii: "F"): n = UInt32(c - UInt8(ascii: "A") + 10)
      default: throw error("invalid \\u escape")
      }
      v = v << 4 | n
    }
    return v
  }

  mutating func readBool() throws(ParseError) -> Bool {
    let c = try peek()
    if c == UInt8(ascii: "t") {
      try literal("true")
      return true
    }
    if c == UInt8(ascii: "f") {
      try literal("false")
      return false
    }
    throw error("expected true or false")
  }

  mutating func readNull() throws(ParseError) -> Bool {
    if try peek() == UInt8(ascii: "n") {
      try literal("null")
      return true
    }
    return false
  }

  private mutating func literal(_ word: StaticString) throws(ParseError) {
    let n = word.utf8CodeUnitCount
    guard offset + n <= bytes.count else { throw error("unexpected end of document") }
    let ok = word.withUTF8Buffer { w in
      (0..<n).allSatisfy { bytes[offset + $0] == w[$0] }
    }
    guard ok else { throw error("invalid literal") }
    offset += n
  }

  /// Reads a number; returns it as a `Double` (the snapshot's numbers are small integers).
  mutating func readNumber() throws(ParseError) -> Double {
    _ = try peek()
    let start = offset
    if offset < bytes.count && bytes[offset] == UInt8(ascii: "-") { offset += 1 }
    var digits = 0
    while offset < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[offset]) {
      offset += 1
      digits += 1
    }
    guard digits > 0 else { throw error("expected a number") }
    if offset < bytes.count && bytes[offset] == UInt8(ascii: ".") {
      offset += 1
      var frac = 0
      while offset < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[offset]) {
        offset += 1
        frac += 1
      }
      guard frac > 0 else { throw error("expected digits after '.'") }
    }
    if offset < bytes.count && (bytes[offset] == UInt8(ascii: "e") || bytes[offset] == UInt8(ascii: "E")) {
      offset += 1
      if offset < bytes.count && (bytes[offset] == UInt8(ascii: "+") || bytes[offset] == UInt8(ascii: "-")) {
        offset += 1
      }
      var exp = 0
      while offset < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[offset]) {
        offset += 1
        exp += 1
      }
      guard exp > 0 else { throw error("expected exponent digits") }
    }
    let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<offset]), as: UTF8.self)
    guard let value = Double(text) else { throw error("invalid number") }
    return value
  }

  /// Skips any value (unknown fields, for forward compatibility).
  mutating func skipValue(depth: Int = 0) throws(ParseError) {
    guard depth < Self.maxDepth else { throw error("nesting deeper than \(Self.maxDepth)") }
    switch try peek() {
    case UInt8(ascii: "{"):
      try readObject { (r, _) throws(ParseError) in try r.skipValue(depth: depth + 1) }
    case UInt8(ascii: "["):
      try readArray { (r, _) throws(ParseError) in try r.skipValue(depth: depth + 1) }
    case UInt8(ascii: "\""):
      _ = try readString()
    case UInt8(ascii: "t"), UInt8(ascii: "f"):
      _ = try readBool()
    case UInt8(ascii: "n"):
      _ = try readNull()
    default:
      _ = try readNumber()
    }
  }
}
