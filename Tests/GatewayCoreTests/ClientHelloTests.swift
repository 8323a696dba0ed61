import Testing

@testable import GatewayCore

/// ClientHello bytes built field by field (RFC 8446 §4.1.2, RFC 6066 §3, RFC 7301 §3.1).
enum HelloBytes {
  static func u16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
  static func u24(_ v: Int) -> [UInt8] { [UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
  static func ext(_ type: Int, _ data: [UInt8]) -> [UInt8] { u16(type) + u16(data.count) + data }
  static func sni(_ name: String) -> [UInt8] {
    let entry = [0] + u16(name.utf8.count) + Array(name.utf8)
    return ext(0, u16(entry.count) + entry)
  }
  static func alpn(_ protocols: [String]) -> [UInt8] {
    let list = protocols.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
    return ext(16, u16(list.count) + list)
  }
  /// The handshake message (type, length, body).
  static func handshake(extensions: [[UInt8]]?) -> [UInt8] {
    var body: [UInt8] = [3, 3] + Array(repeating: 7, count: 32)  // legacy_version, random
    body += [32] + Array(repeating: 1, count: 32)  // session id
    body += u16(4) + [0x13, 0x01, 0xC0, 0x2F]  // two suites
    body += [1, 0]  // null compression
    if let extensions {
      let all = extensions.flatMap { $0 }
      body += u16(all.count) + all
    }
    return [1] + u24(body.count) + body
  }
  /// In one record, or split into records of at most `recordSize` bytes.
  static func records(_ message: [UInt8], recordSize: Int = 16384) -> [UInt8] {
    var out: [UInt8] = []
    var i = 0
    while i < message.count {
      let n = min(recordSize, message.count - i)
      out += [22, 3, 1] + u16(n) + message[i..<(i + n)]
      i += n
    }
    return out
  }
}

@Suite("ClientHello: server name and ALPN before the handshake (tls-alpn-01 needs both)")
struct ClientHelloTests {
  func parse(_ bytes: [UInt8]) -> ClientHello.Parse { bytes.withUnsafeBytes { ClientHello.parse($0) } }

  @Test("SNI and ALPN are read, in the client's order")
  func nameAndALPN() {
    let hello = HelloBytes.records(HelloBytes.handshake(extensions: [HelloBytes.sni("Shop.Example"), HelloBytes.ext(10, [0, 2, 0, 29]), HelloBytes.alpn(["h2", "http/1.1"])]))
    #expect(parse(hello) == .hello(serverName: "Shop.Example", alpn: ["h2", "http/1.1"]))
  }

  @Test("A validation handshake: only acme-tls/1")
  func acmeOnly() {
    let hello = HelloBytes.records(HelloBytes.handshake(extensions: [HelloBytes.alpn(["acme-tls/1"]), HelloBytes.sni("shop.example")]))
    #expect(parse(hello) == .hello(serverName: "shop.example", alpn: ["acme-tls/1"]))
  }

  @Test("No extensions, or no SNI: nil name, no protocols")
  func none() {
    #expect(parse(HelloBytes.records(HelloBytes.handshake(extensions: nil))) == .hello(serverName: nil, alpn: []))
    #expect(parse(HelloBytes.records(HelloBytes.handshake(extensions: [HelloBytes.alpn(["h2"])]))) == .hello(serverName: nil, alpn: ["h2"]))
  }

  @Test("Every strict prefix needs more; a ClientHello split over records reads the same")
  func prefixesAndRecords() {
    let message = HelloBytes.handshake(extensions: [HelloBytes.sni("a.example"), HelloBytes.alpn(["acme-tls/1"])])
    let whole = HelloBytes.records(message)
    for n in 0..<whole.count {
      #expect(parse(Array(whole[..<n])) == .needMore, "prefix \(n)")
    }
    for size in [1, 3, 4, 50] {
      #expect(parse(HelloBytes.records(message, recordSize: size)) == .hello(serverName: "a.example", alpn: ["acme-tls/1"]), "records of \(size)")
    }
  }

  @Test("Not a ClientHello, or a malformed one: left to the TLS stack", arguments: [
    Array("GET / HTTP/1.1\r\n\r\n".utf8),
    [22, 3, 1, 0, 4, 2, 0, 0, 0],  // a ServerHello type
    [23, 3, 3, 0, 1, 0],  // application data
    HelloBytes.records(HelloBytes.handshake(extensions: [HelloBytes.sni("a.example"), HelloBytes.sni("b.example")])),  // SNI twice
    HelloBytes.records(HelloBytes.handshake(extensions: [HelloBytes.ext(16, [0, 0])])),  // empty ALPN list
    HelloBytes.records(HelloBytes.handshake(extensions: [HelloBytes.ext(0, [0, 9, 0, 0, 3, 97])])),  // list longer than the extension
  ])
  func refused(bytes: [UInt8]) {
    #expect(parse(bytes) == .notClientHello)
  }

  @Test("A flipped byte anywhere never crashes or over-reads")
  func mutations() {
    let base = HelloBytes.records(HelloBytes.handshake(extensions: [HelloBytes.sni("shop.example"), HelloBytes.alpn(["h2", "acme-tls/1"])]))
    for i in 0..<base.count {
      for v: UInt8 in [0, 1, 0x7F, 0xFF] {
        var b = base
        b[i] = v
        _ = parse(b)
      }
    }
  }
}
