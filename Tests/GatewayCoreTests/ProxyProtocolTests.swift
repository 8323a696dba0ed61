import Testing

@testable import GatewayCore

@Suite("PROXY protocol header (v1, v2)")
struct ProxyProtocolTests {
  typealias R = ProxyProtocol.ParseResult
  static func header(_ address: String?, _ port: Int?, _ length: Int) -> R {
    .header(ProxyProtocol.Header(sourceAddress: address, sourcePort: port), length: length)
  }

  static func v2(command: UInt8 = 0x21, family: UInt8, addresses: [UInt8], tlvs: [UInt8] = []) -> [UInt8] {
    let body = addresses + tlvs
    return ProxyProtocol.v2Signature + [command, family, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
  }

  @Test("v1: TCP4, TCP6 and UNKNOWN lines; the length covers the CRLF; bytes after it are the client's")
  func v1() {
    let line = "PROXY TCP4 192.0.2.7 198.51.100.2 51234 443\r\n"
    #expect(ProxyProtocol.parse(Array((line + "\u{16}\u{03}").utf8)) == Self.header("192.0.2.7", 51234, line.utf8.count))
    let six = "PROXY TCP6 2001:db8::1 2001:db8::2 1 443\r\n"
    #expect(ProxyProtocol.parse(Array(six.utf8)) == Self.header("2001:db8::1", 1, six.utf8.count))
    #expect(ProxyProtocol.parse(Array("PROXY UNKNOWN\r\n".utf8)) == Self.header(nil, nil, 15))
    #expect(ProxyProtocol.parse(Array("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n".utf8)) == Self.header(nil, nil, 35))
  }

  @Test("v1: partial input waits; every malformed shape is refused")
  func v1Malformed() {
    for partial in ["P", "PROX", "PROXY TCP4 192.0.2.7 198.51.100.2 51234 4"] {
      #expect(ProxyProtocol.parse(Array(partial.utf8)) == .needMoreData, "\(partial)")
    }
    let refused = [
      "GET / HTTP/1.1\r\n",  // no header at all
      "PROXY TCP4 192.0.2.7 198.51.100.2 51234 443\n",  // bare LF
      "PROXY TCP4 999.0.2.7 198.51.100.2 51234 443\r\n",  // not an address
      "PROXY TCP4 2001:db8::1 198.51.100.2 51234 443\r\n",  // v6 in a TCP4 line
      "PROXY TCP4 192.0.2.7 198.51.100.2 65536 443\r\n",  // port range
      "PROXY TCP4 192.0.2.7 198.51.100.2 0123 443\r\n",  // leading zero
      "PROXY TCP4 192.0.2.7  198.51.100.2 1 443\r\n",  // two spaces
      "PROXY UDP4 192.0.2.7 198.51.100.2 1 443\r\n",
      "PROXY TCP4 192.0.2.7 198.51.100.2 1\r\n",
      "PROXY " + String(repeating: "A", count: 120),  // no CRLF within 107 bytes
    ]
    for r in refused {
      guard case .invalid = ProxyProtocol.parse(Array(r.utf8)) else {
        Issue.record("accepted: \(r.debugDescription)")
        continue
      }
    }
  }

  @Test("v2: PROXY over IPv4 and IPv6 with TLVs; LOCAL and UNSPEC keep the connection's address")
  func v2() {
    let v4 = Self.v2(family: 0x11, addresses: [192, 0, 2, 7, 198, 51, 100, 2, 0xC8, 0x22, 0x01, 0xBB], tlvs: [0x01, 0x00, 0x02, 0x68, 0x32])
    #expect(ProxyProtocol.parse(v4 + [0x16]) == Self.header("192.0.2.7", 0xC822, v4.count))
    let src6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
    let v6 = Self.v2(family: 0x21, addresses: src6 + [UInt8](repeating: 0, count: 16) + [0, 80, 1, 187])
    #expect(ProxyProtocol.parse(v6) == Self.header("2001:db8::1", 80, v6.count))
    let local = Self.v2(command: 0x20, family: 0x00, addresses: [])
    #expect(ProxyProtocol.parse(local) == Self.header(nil, nil, 16))
    let unspec = Self.v2(family: 0x00, addresses: [])
    #expect(ProxyProtocol.parse(unspec) == Self.header(nil, nil, 16))
  }

  @Test("v2: partial input waits (signature, fixed part, address block); malformed headers are refused")
  func v2Malformed() {
    let v4 = Self.v2(family: 0x11, addresses: [192, 0, 2, 7, 198, 51, 100, 2, 0xC8, 0x22, 0x01, 0xBB])
    for n in [1, 11, 12, 15, 16, 27] {
      #expect(ProxyProtocol.parse(Array(v4.prefix(n))) == .needMoreData, "\(n) bytes")
    }
    var badVersion = v4
    badVersion[12] = 0x11
    var badCommand = v4
    badCommand[12] = 0x2F
    var badSignature = v4
    badSignature[7] = 0x00
    let shortBlock = Self.v2(family: 0x11, addresses: [192, 0, 2, 7])
    let unix = Self.v2(family: 0x31, addresses: [UInt8](repeating: 0, count: 216))
    var huge = ProxyProtocol.v2Signature + [0x21, 0x11, 0xFF, 0xFF]
    huge += [UInt8](repeating: 0, count: 16)
    for (name, bytes) in [("version", badVersion), ("command", badCommand), ("signature", badSignature), ("short", shortBlock),
                          ("unix", unix), ("huge", huge)] {
      guard case .invalid = ProxyProtocol.parse(bytes) else {
        Issue.record("accepted: \(name)")
        continue
      }
    }
  }
}
