/// Host normalisation of PRODUCT.md §2: strip the port, drop one trailing dot, lowercase ASCII, and
/// refuse anything that is not a valid host name (or a bracketed IPv6 / dotted IPv4 literal).
///
/// Works on bytes: the result is the input `String` itself whenever it was already normal (the
/// common case: browsers and SDKs send lowercase hosts without ports), so normalising costs no
/// allocation on the hot path.
public enum HostName {
  /// Longest host name accepted, in bytes (RFC 1035: 253 characters in text form).
  public static let maxLength = 253
  /// Longest single label, in bytes.
  public static let maxLabelLength = 63

  /// Normalises a `Host` header or `:authority` value. Returns `nil` when it is not a valid host.
  public static func normalize(_ raw: String) -> String? {
    var bytes = raw
    switch bytes.withUTF8({ normalizeBytes($0) }) {
    case .invalid: return nil
    case .unchanged: return raw
    case .changed(let normal): return normal
    }
  }

  enum Outcome {
    case invalid
    case unchanged
    case changed(String)
  }

  /// Normalises a host given as bytes.
  static func normalizeBytes(_ input: UnsafeBufferPointer<UInt8>) -> Outcome {
    guard !input.isEmpty, input.count <= maxLength + 7 else { return .invalid }
    var end = input.count
    var changed = false

    if input[0] == UInt8(ascii: "[") {
      // IPv6 literal, RFC 3986 §3.2.2: "[" hex/":"/"." "]" [":" port]
      // The longest IPv6 text is 45 bytes ("ffff:…:ffff:255.255.255.255") and it has at least two
      // colons: longer or colon-less bracket contents are not addresses (found by Fuzz/FuzzHostName).
      guard let close = input.firstIndex(of: UInt8(ascii: "]")), close > 1, close - 1 <= 45,
        input[1..<close].lazy.filter({ $0 == UInt8(ascii: ":") }).count >= 2
      else { return .invalid }
      if close + 1 < end {
        guard input[close + 1] == UInt8(ascii: ":"), validPort(input, from: close + 2, to: end) else { return .invalid }
        end = close + 1
        changed = true
      }
      var out = [UInt8]()
      out.reserveCapacity(end)
      for i in 0..<end {
        var b = input[i]
        if i > 0 && i < close {
          switch b {
          case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: ":"),
            UInt8(ascii: "."):
            break
          case UInt8(ascii: "A")...UInt8(ascii: "F"):
            b |= 0x20
            changed = true
          default: return .invalid
          }
        }
        out.append(b)
      }
      return changed ? .changed(String(decoding: out, as: UTF8.self)) : .unchanged
    }

    // host ":" port — at most one colon outside brackets.
    if let colon = input.firstIndex(of: UInt8(ascii: ":")) {
      guard validPort(input, from: colon + 1, to: end) else { return .invalid }
      end = colon
      changed = true
    }
    if end > 0 && input[end - 1] == UInt8(ascii: ".") {
      end -= 1
      changed = true
    }
    guard end > 0, end <= maxLength else { return .invalid }

    var labelLength = 0
    var previous: UInt8 = UInt8(ascii: ".")
    for i in 0..<end {
      let b = input[i]
      switch b {
      case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
        labelLength += 1
      case UInt8(ascii: "A")...UInt8(ascii: "Z"):
        labelLength += 1
        changed = true
      case UInt8(ascii: "-"):
        // RFC 1123 LDH: a label neither starts nor ends with a hyphen.
        guard previous != UInt8(ascii: ".") else { return .invalid }
        labelLength += 1
      case UInt8(ascii: "."):
        guard labelLength > 0, previous != UInt8(ascii: "-") else { return .invalid }
        labelLength = 0
      default:
        return .invalid
      }
      guard labelLength <= maxLabelLength else { return .invalid }
      previous = b
    }
    // The last label must be non-empty and not end with a hyphen ("a.b.." keeps one dot after trimming).
    guard previous != UInt8(ascii: "-"), labelLength > 0 else { return .invalid }
    guard changed else { return .unchanged }
    return .changed(
      String(unsafeUninitializedCapacity: end) { out in
        for i in 0..<end {
          let b = input[i]
          out[i] = (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z")) ? b | 0x20 : b
        }
        return end
      })
  }

  /// RFC 3986 `port = *DIGIT`, at most 65535.
  private static func validPort(_ input: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> Bool {
    guard to - from <= 5 else { return false }
    var value = 0
    for i in from..<to {
      let b = input[i]
      guard b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") else { return false }
      value = value * 10 + Int(b - UInt8(ascii: "0"))
    }
    return value <= 65535
  }
}
