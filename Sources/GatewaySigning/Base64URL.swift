/// Base64url without padding (RFC 4648 §5), as JWS compact serialisation uses it.
public enum Base64URL {
  @usableFromInline static let alphabet: [UInt8] = Array(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

  /// Appends the encoding of `input` to `out`.
  @inlinable
  public static func encode(_ input: UnsafeRawBufferPointer, into out: inout [UInt8]) {
    let n = input.count
    let outLength = n / 3 * 4 + [0, 2, 3][n % 3]
    let start = out.count
    // Grow once, then write through a pointer (no per-byte append checks).
    out.append(contentsOf: repeatElement(0, count: outLength))
    out.withUnsafeMutableBufferPointer { o in
      alphabet.withUnsafeBufferPointer { a in
        var i = 0
        var j = start
        while i + 3 <= n {
          let v = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8 | UInt32(input[i + 2])
          o[j] = a[Int(v >> 18 & 63)]
          o[j + 1] = a[Int(v >> 12 & 63)]
          o[j + 2] = a[Int(v >> 6 & 63)]
          o[j + 3] = a[Int(v & 63)]
          i += 3
          j += 4
        }
        if n - i == 1 {
          let v = UInt32(input[i]) << 16
          o[j] = a[Int(v >> 18 & 63)]
          o[j + 1] = a[Int(v >> 12 & 63)]
        } else if n - i == 2 {
          let v = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8
          o[j] = a[Int(v >> 18 & 63)]
          o[j + 1] = a[Int(v >> 12 & 63)]
          o[j + 2] = a[Int(v >> 6 & 63)]
        }
      }
    }
  }

  /// The encoding of `input` as a string.
  public static func encode<C: Collection<UInt8>>(_ input: C) -> String {
    var out: [UInt8] = []
    Array(input).withUnsafeBytes { encode($0, into: &out) }
    return String(decoding: out, as: UTF8.self)
  }

  /// Decodes unpadded (or padded) base64url; `nil` on any invalid character.
  public static func decode(_ text: some StringProtocol) -> [UInt8]? {
    var out: [UInt8] = []
    out.reserveCapacity(text.utf8.count * 3 / 4)
    var acc: UInt32 = 0
    var bits = 0
    for c in text.utf8 {
      let v: UInt32
      switch c {
      case UInt8(ascii: "A")...UInt8(ascii: "Z"): v = UInt32(c - UInt8(ascii: "A"))
      case UInt8(ascii: "a")...UInt8(ascii: "z"): v = UInt32(c - UInt8(ascii: "a") + 26)
      case UInt8(ascii: "0")...UInt8(ascii: "9"): v = UInt32(c - UInt8(ascii: "0") + 52)
      case UInt8(ascii: "-"): v = 62
      case UInt8(ascii: "_"): v = 63
      case UInt8(ascii: "="): continue
      default: return nil
      }
      acc = acc << 6 | v
      bits += 6
      if bits >= 8 {
        bits -= 8
        out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
      }
    }
    return out
  }
}
