import Foundation

/// The PROXY protocol header a TCP load balancer puts in front of a connection's bytes (HAProxy's
/// spec, versions 1 and 2: https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt), parsed
/// from the first bytes of the connection. Pure: the channel handler feeds bytes and acts on the
/// result (`listen.proxy_protocol`, PRODUCT.md §7).
public enum ProxyProtocol {
  /// The client the balancer saw. `nil` source: a `LOCAL` (v2) or `UNKNOWN` (v1) header, sent by
  /// the balancer for its own health checks: the connection's own address stands.
  public struct Header: Equatable, Sendable {
    public var sourceAddress: String?
    public var sourcePort: Int?
    public init(sourceAddress: String?, sourcePort: Int?) {
      self.sourceAddress = sourceAddress
      self.sourcePort = sourcePort
    }
  }

  public enum ParseResult: Equatable, Sendable {
    /// Not enough bytes yet to decide.
    case needMoreData
    /// A complete header of `length` bytes; what follows it is the client's data.
    case header(Header, length: Int)
    /// Not a PROXY header, or a malformed one: the connection is closed.
    case invalid(String)
  }

  /// v2's 12-byte signature.
  public static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
  /// v1's longest line (the spec's 107 bytes, CRLF included).
  public static let v1MaxLength = 107
  /// The longest v2 header taken (addresses plus TLVs); a balancer's TLVs are far smaller.
  public static let v2MaxLength = 16 + 2048

  /// Parses the start of a connection.
  public static func parse(_ bytes: UnsafeRawBufferPointer) -> ParseResult {
    guard !bytes.isEmpty else { return .needMoreData }
    if bytes[0] == UInt8(ascii: "P") { return parseV1(bytes) }
    if bytes[0] == 0x0D { return parseV2(bytes) }
    return .invalid("no PROXY protocol header")
  }

  /// Convenience for tests and callers holding an array.
  public static func parse(_ bytes: [UInt8]) -> ParseResult {
    bytes.withUnsafeBytes { parse($0) }
  }

  // MARK: v1: "PROXY TCP4 192.0.2.1 198.51.100.2 51234 443\r\n"

  static func parseV1(_ bytes: UnsafeRawBufferPointer) -> ParseResult {
    let prefix = Array("PROXY ".utf8)
    for (i, b) in prefix.enumerated() {
      guard i < bytes.count else { return .needMoreData }
      guard bytes[i] == b else { return .invalid("no PROXY protocol header") }
    }
    // The line ends with CRLF within 107 bytes.
    var end: Int? = nil
    for i in 0..<min(bytes.count, v1MaxLength) where bytes[i] == 0x0A {
      end = i
      break
    }
    guard let lf = end else {
      return bytes.count >= v1MaxLength ? .invalid("PROXY v1 line longer than 107 bytes") : .needMoreData
    }
    guard lf > 0, bytes[lf - 1] == 0x0D else { return .invalid("PROXY v1 line must end with CRLF") }
    let line = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[prefix.count..<(lf - 1)]), as: UTF8.self)
    let fields = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
    guard let proto = fields.first else { return .invalid("PROXY v1 line is empty") }
    if proto == "UNKNOWN" { return .header(Header(sourceAddress: nil, sourcePort: nil), length: lf + 1) }
    guard proto == "TCP4" || proto == "TCP6", fields.count == 5 else {
      return .invalid("PROXY v1 line must be TCP4|TCP6 SRC DST SRCPORT DSTPORT")
    }
    let family = proto == "TCP4" ? AF_INET : AF_INET6
    guard let source = canonical(fields[1], family: family), canonical(fields[2], family: family) != nil else {
      return .invalid("PROXY v1 addresses are not \(proto) addresses")
    }
    guard let sport = port(fields[3]), port(fields[4]) != nil else { return .invalid("PROXY v1 ports must be 0-65535") }
    return .header(Header(sourceAddress: source, sourcePort: sport), length: lf + 1)
  }

  /// A port in decimal without leading zeros or signs.
  static func port(_ s: String) -> Int? {
    guard !s.isEmpty, s.count <= 5, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), s == "0" || !s.hasPrefix("0"),
      let v = Int(s), v <= 65535
    else { return nil }
    return v
  }

  /// The address in its canonical text form, when it is one of `family`.
  static func canonical(_ text: String, family: Int32) -> String? {
    var storage = [UInt8](repeating: 0, count: 16)
    guard inet_pton(family, text, &storage) == 1 else { return nil }
    return format(Array(storage.prefix(family == AF_INET ? 4 : 16)))
  }

  /// 4 or 16 address bytes as text.
  static func format(_ address: [UInt8]) -> String {
    var out = [UInt8](repeating: 0, count: 64)
    let family = address.count == 4 ? AF_INET : AF_INET6
    _ = address.withUnsafeBytes { a in
      out.withUnsafeMutableBufferPointer { o in
        o.baseAddress!.withMemoryRebound(to: CChar.self, capacity: o.count) { inet_ntop(family, a.baseAddress, $0, socklen_t(o.count)) }
      }
    }
    return String(decoding: out.prefix { $0 != 0 }, as: UTF8.self)
  }

  // MARK: v2: signature, version/command, family/protocol, length, addresses, TLVs

  static func parseV2(_ bytes: UnsafeRawBufferPointer) -> ParseResult {
    for (i, b) in v2Signature.enumerated() {
      guard i < bytes.count else { return .needMoreData }
      guard bytes[i] == b else { return .invalid("no PROXY protocol header") }
    }
    guard bytes.count >= 16 else { return .needMoreData }
    let versionCommand = bytes[12]
    guard versionCommand >> 4 == 2 else { return .invalid("PROXY v2 version must be 2") }
    let command = versionCommand & 0x0F
    guard command <= 1 else { return .invalid("PROXY v2 command must be LOCAL or PROXY") }
    let familyProtocol = bytes[13]
    let length = Int(bytes[14]) << 8 | Int(bytes[15])
    guard 16 + length <= v2MaxLength else { return .invalid("PROXY v2 header longer than \(v2MaxLength) bytes") }
    guard bytes.count >= 16 + length else { return .needMoreData }
    let total = 16 + length
    // LOCAL: the balancer's own connection (a health check); addresses, if any, are ignored.
    if command == 0 { return .header(Header(sourceAddress: nil, sourcePort: nil), length: total) }
    switch familyProtocol {
    case 0x11, 0x12:  // TCP or UDP over IPv4
      guard length >= 12 else { return .invalid("PROXY v2 IPv4 block is 12 bytes") }
      let source = Array(UnsafeRawBufferPointer(rebasing: bytes[16..<20]))
      let port = Int(bytes[24]) << 8 | Int(bytes[25])
      return .header(Header(sourceAddress: format(source), sourcePort: port), length: total)
    case 0x21, 0x22:  // over IPv6
      guard length >= 36 else { return .invalid("PROXY v2 IPv6 block is 36 bytes") }
      let source = Array(UnsafeRawBufferPointer(rebasing: bytes[16..<32]))
      let port = Int(bytes[48]) << 8 | Int(bytes[49])
      return .header(Header(sourceAddress: format(source), sourcePort: port), length: total)
    case 0x00:  // UNSPEC: the balancer does not know; keep the connection's address
      return .header(Header(sourceAddress: nil, sourcePort: nil), length: total)
    default:
      return .invalid("PROXY v2 family \(String(familyProtocol, radix: 16)) is not TCP over IPv4 or IPv6")
    }
  }
}
