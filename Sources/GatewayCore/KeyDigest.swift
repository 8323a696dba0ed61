import Crypto

/// The SHA-256 digest of an API key, held inline as four words (no heap allocation).
///
/// Keys are only ever looked up by this digest (PRODUCT.md §2); the plaintext key is hashed once per
/// request and dropped.
public struct KeyDigest: Hashable, Sendable {
  public var w0: UInt64
  public var w1: UInt64
  public var w2: UInt64
  public var w3: UInt64

  public init(w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64) {
    self.w0 = w0
    self.w1 = w1
    self.w2 = w2
    self.w3 = w3
  }

  /// Builds a digest from exactly 32 raw bytes.
  public init(rawBytes: UnsafeRawBufferPointer) {
    precondition(rawBytes.count == 32)
    w0 = rawBytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
    w1 = rawBytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
    w2 = rawBytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
    w3 = rawBytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
  }

  /// SHA-256 of `key`'s bytes.
  public static func of(bytes key: UnsafeRawBufferPointer) -> KeyDigest {
    var hasher = SHA256()
    hasher.update(bufferPointer: key)
    return hasher.finalize().withUnsafeBytes { KeyDigest(rawBytes: $0) }
  }

  /// SHA-256 of a key given as a string (its UTF-8 bytes).
  public static func of(key: String) -> KeyDigest {
    var key = key
    return key.withUTF8 { of(bytes: UnsafeRawBufferPointer($0)) }
  }

  /// Parses 64 hex digits (either case). Returns `nil` for anything else.
  public init?(hex: some StringProtocol) {
    var bytes = [UInt8](repeating: 0, count: 32)
    var index = 0
    var high: UInt8? = nil
    for c in hex.utf8 {
      let nibble: UInt8
      switch c {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = c - UInt8(ascii: "0")
      case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = c - UInt8(ascii: "a") + 10
      case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = c - UInt8(ascii: "A") + 10
      default: return nil
      }
      if let h = high {
        guard index < 32 else { return nil }
        bytes[index] = h << 4 | nibble
        index += 1
        high = nil
      } else {
        high = nibble
      }
    }
    guard index == 32, high == nil else { return nil }
    self = bytes.withUnsafeBytes { KeyDigest(rawBytes: $0) }
  }

  /// Parses 64 hex digits given as bytes (the snapshot parser's path).
  public init?(hexBytes hex: UnsafeRawBufferPointer) {
    guard hex.count == 64 else { return nil }
    var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    let ok = withUnsafeMutableBytes(of: &words) { out -> Bool in
      for i in 0..<32 {
        guard let hi = Self.nibble(hex[2 * i]), let lo = Self.nibble(hex[2 * i + 1]) else { return false }
        out[i] = hi << 4 | lo
      }
      return true
    }
    guard ok else { return nil }
    self.init(w0: words.0, w1: words.1, w2: words.2, w3: words.3)
  }

  @inline(__always) static func nibble(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
    default: return nil
    }
  }

  /// Lower-case hex, 64 characters.
  public var hex: String {
    var copy = self
    return withUnsafeBytes(of: &copy) { raw in
      var out = ""
      out.reserveCapacity(64)
      for b in raw {
        out.unicodeScalars.append(UnicodeScalar(JSONText.hexByte(b >> 4)))
        out.unicodeScalars.append(UnicodeScalar(JSONText.hexByte(b & 0xF)))
      }
      return out
    }
  }

  /// The first word is already uniformly distributed: SHA-256 output needs no further hashing.
  @inlinable var bucketHash: UInt64 { w0 }
}
