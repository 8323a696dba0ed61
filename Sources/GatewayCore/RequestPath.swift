/// The one normal form of a request path (PRODUCT.md §3): routes are matched on it, it is what the
/// upstream receives, and it is the `htu` claim, so a backend sees exactly what was authorised.
///
/// Why: routes used to be matched on the raw path while the raw path was forwarded. A backend that
/// decodes `%76` to `v`, merges `//`, or strips `;x` then routed `/%76%31/admin/orders` (which no
/// rule of ours matched as `/v1/admin/`) to its admin handler with only host authentication. Now
/// every equivalent spelling matches the same rule and reaches the backend in the same form.
///
/// The form, in order (RFC 3986 §6.2.2 plus what backends are known to do on their own):
/// - percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded; every other escape
///   is kept, its hex digits upper-cased (`%2f` would be refused anyway, `%c3%a9` → `%C3%A9`);
/// - dot-segments (`.`, `..`, also spelt `%2e`) are removed (§5.2.4; `..` never climbs above `/`);
/// - repeated slashes are merged (`//v1` → `/v1`);
/// - refused: `;` (path parameters), an encoded `/` or `\`, a raw `\`, an encoded NUL or other
///   control byte, a fragment (`#`, anywhere in the target), malformed escapes, and raw bytes that
///   are not visible ASCII.
///
/// Case is kept (paths are case-sensitive to many backends); route prefixes are compared
/// ASCII-case-insensitively instead (``RouteTable/match(path:)``). The query is not rewritten: it is
/// only checked for a fragment and for bytes that could break the upstream request line.
public enum RequestPath {
  /// Why a path was refused (`400 invalid_request`).
  public enum Problem: Error, Equatable, Sendable {
    case fragment
    case pathParameter
    case encodedSlash
    case backslash
    case controlByte
    case malformedEscape
    case invalidByte
    case invalidQueryByte

    /// The refusal's message.
    public var message: String {
      switch self {
      case .fragment: return "A fragment (#) is not allowed in the request target."
      case .pathParameter: return "Path parameters (;) are not allowed in the path."
      case .encodedSlash: return "Encoded slashes and backslashes are not allowed in the path."
      case .backslash: return "Backslashes are not allowed in the path."
      case .controlByte: return "Encoded NUL and control bytes are not allowed in the path."
      case .malformedEscape: return "Malformed percent-encoding in the path."
      case .invalidByte: return "Invalid byte in the path."
      case .invalidQueryByte: return "Invalid byte in the query."
      }
    }
  }

  /// A target in normal form: `path` (what routes match and `htu` carries) and `target` (the path
  /// plus the query as received, what the upstream request line carries).
  public struct Normalized: Equatable, Sendable {
    public var target: String
    public var path: String

    public init(target: String, path: String) {
      self.target = target
      self.path = path
    }
  }

  /// Normalises an origin-form target (`/path[?query]`). The caller has checked the leading `/`.
  public static func normalize(target: Substring) -> Result<Normalized, Problem> {
    // A parsed target is native, contiguous UTF-8: read it in place (no copy on the common path).
    if let r = target.utf8.withContiguousStorageIfAvailable({ normalize(bytes: $0, original: target) }) { return r }
    return Array(target.utf8).withUnsafeBufferPointer { normalize(bytes: $0, original: target) }
  }

  /// String convenience (tests, tools).
  public static func normalize(target: String) -> Result<Normalized, Problem> {
    normalize(target: Substring(target))
  }

  private static func normalize(bytes: UnsafeBufferPointer<UInt8>, original: Substring) -> Result<Normalized, Problem> {
    // Where the path ends: the first `?` (a `?` can never be escaped into the path: `%3F` stays).
    var pathEnd = bytes.count
    for i in 0..<bytes.count where bytes[i] == UInt8(ascii: "?") {
      pathEnd = i
      break
    }
    // The query: no fragment, nothing that would end or split the request line upstream.
    var q = pathEnd
    while q < bytes.count {
      let b = bytes[q]
      if b == UInt8(ascii: "#") { return .failure(.fragment) }
      if b <= 0x20 || b == 0x7F { return .failure(.invalidQueryByte) }
      q += 1
    }

    // One scan: refuse what is refused, and learn whether anything needs rewriting. Almost every
    // real path needs none, and then the target is returned as it came (no second buffer).
    var needsRewrite = false
    var i = 0
    var segmentStart = true
    while i < pathEnd {
      let b = bytes[i]
      switch b {
      case UInt8(ascii: "/"):
        if i + 1 < pathEnd && bytes[i + 1] == UInt8(ascii: "/") { needsRewrite = true }
        segmentStart = true
        i += 1
        continue
      case UInt8(ascii: "%"):
        guard i + 2 < pathEnd, isHex(bytes[i + 1]), isHex(bytes[i + 2]) else {
          return .failure(.malformedEscape)
        }
        if let problem = escapeProblem(hexValue(bytes[i + 1]) << 4 | hexValue(bytes[i + 2])) { return .failure(problem) }
        // Decoded or upper-cased: either way the slow path writes it.
        needsRewrite = true
        i += 3
        segmentStart = false
        continue
      case UInt8(ascii: "."):
        if segmentStart {
          let next = i + 1 < pathEnd ? bytes[i + 1] : UInt8(ascii: "/")
          if next == UInt8(ascii: "/") { needsRewrite = true }
          if next == UInt8(ascii: "."), i + 2 >= pathEnd || bytes[i + 2] == UInt8(ascii: "/") { needsRewrite = true }
        }
      case UInt8(ascii: ";"):
        return .failure(.pathParameter)
      case UInt8(ascii: "\\"):
        return .failure(.backslash)
      case UInt8(ascii: "#"):
        return .failure(.fragment)
      default:
        if b <= 0x20 || b >= 0x7F { return .failure(.invalidByte) }
      }
      segmentStart = false
      i += 1
    }
    if !needsRewrite {
      // pathEnd is at an ASCII `?`: a character boundary.
      let path = pathEnd == bytes.count ? original : original[..<original.utf8.index(original.utf8.startIndex, offsetBy: pathEnd)]
      return .success(Normalized(target: String(original), path: String(path)))
    }
    return .success(rewrite(bytes: bytes, pathEnd: pathEnd))
  }

  /// The slow path: segment by segment into a new buffer.
  private static func rewrite(bytes: UnsafeBufferPointer<UInt8>, pathEnd: Int) -> Normalized {
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    // Where each kept segment's "/" sits in `out`, so that ".." can drop the last one.
    var starts: [Int] = []
    var i = 0
    // Whether the normalised path ends with "/" (an empty or dot last segment, RFC 3986 §5.2.4).
    var trailingSlash = false
    while i < pathEnd {
      // i is at a "/" (the path starts with one, and each segment ends at one).
      i += 1
      let segmentStart = out.count
      out.append(UInt8(ascii: "/"))
      var j = i
      while j < pathEnd && bytes[j] != UInt8(ascii: "/") {
        let b = bytes[j]
        if b == UInt8(ascii: "%") {
          let v = hexValue(bytes[j + 1]) << 4 | hexValue(bytes[j + 2])
          if isUnreserved(v) {
            out.append(v)
          } else {
            out.append(UInt8(ascii: "%"))
            out.append(upperHex(bytes[j + 1]))
            out.append(upperHex(bytes[j + 2]))
          }
          j += 3
        } else {
          out.append(b)
          j += 1
        }
      }
      let length = out.count - segmentStart - 1
      let isLast = j >= pathEnd
      if length == 0 {
        // An empty segment: a repeated slash (merged) or the trailing slash.
        out.removeLast()
        if isLast { trailingSlash = true }
      } else if length == 1 && out[segmentStart + 1] == UInt8(ascii: ".") {
        out.removeLast(2)
        if isLast { trailingSlash = true }
      } else if length == 2 && out[segmentStart + 1] == UInt8(ascii: ".") && out[segmentStart + 2] == UInt8(ascii: ".") {
        out.removeLast(3)
        if let previous = starts.popLast() { out.removeLast(out.count - previous) }
        if isLast { trailingSlash = true }
      } else {
        starts.append(segmentStart)
        trailingSlash = false
      }
      i = j
    }
    if out.isEmpty || trailingSlash { out.append(UInt8(ascii: "/")) }
    let path = String(decoding: out, as: UTF8.self)
    if pathEnd == bytes.count { return Normalized(target: path, path: path) }
    out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[pathEnd...]))
    return Normalized(target: String(decoding: out, as: UTF8.self), path: path)
  }

  /// What an escape may not decode to in a path.
  @inline(__always)
  private static func escapeProblem(_ v: UInt8) -> Problem? {
    if v == UInt8(ascii: "/") || v == UInt8(ascii: "\\") { return .encodedSlash }
    if v < 0x20 || v == 0x7F { return .controlByte }
    return nil
  }

  /// RFC 3986 §2.3 unreserved characters.
  @inline(__always)
  static func isUnreserved(_ b: UInt8) -> Bool {
    switch b {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
      UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
      return true
    default:
      return false
    }
  }

  @inline(__always)
  static func isHex(_ b: UInt8) -> Bool {
    (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66)
  }

  @inline(__always)
  static func hexValue(_ b: UInt8) -> UInt8 {
    b <= 0x39 ? b - 0x30 : (b | 0x20) - 0x61 + 10
  }

  @inline(__always)
  private static func upperHex(_ b: UInt8) -> UInt8 {
    b >= UInt8(ascii: "a") ? b - 0x20 : b
  }
}
