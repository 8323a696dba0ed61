/// What the gateway reads from a TLS ClientHello before choosing how to answer it: the server
/// name (RFC 6066 §3) and the offered ALPN protocols (RFC 7301 §3.1).
///
/// Why both: a tls-alpn-01 validation (RFC 8737 §3) is a handshake offering ALPN `acme-tls/1`, and
/// it must get the challenge certificate and nothing else, while every other handshake for the same
/// name gets the real one. NIOTLS's `SNIHandler` reads the name only, hence this parser.
///
/// Pure and bounded: it reads at most one ClientHello (up to `maxLength` bytes across records) and
/// never allocates per byte.
public enum ClientHello {
  public enum Parse: Equatable, Sendable {
    /// The bytes so far are a prefix of a ClientHello: wait for more.
    case needMore
    /// Not a ClientHello, or a malformed one: let the TLS stack refuse it as it would.
    case notClientHello
    /// `serverName` nil: no (host name) SNI. `alpn` empty: no ALPN extension.
    case hello(serverName: String?, alpn: [String])
  }

  /// The largest ClientHello accepted (handshake body): 64 KiB, four full TLS records. Post-quantum
  /// key shares make them ~2 KiB today.
  public static let maxLength = 65536

  public static func parse(_ bytes: UnsafeRawBufferPointer) -> Parse {
    // Reassemble the handshake message from the records that carry it (RFC 8446 §5.1 allows a
    // ClientHello to span records).
    var message: [UInt8] = []
    var offset = 0
    var needed: Int? = nil
    while true {
      guard bytes.count - offset >= 5 else { return .needMore }
      // ContentType handshake (22); legacy_record_version 3.x.
      guard bytes[offset] == 22, bytes[offset + 1] == 3 else { return .notClientHello }
      let length = Int(bytes[offset + 3]) << 8 | Int(bytes[offset + 4])
      guard length > 0, length <= 16384 + 256 else { return .notClientHello }
      guard bytes.count - offset - 5 >= length else { return .needMore }
      message.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[(offset + 5)..<(offset + 5 + length)]))
      offset += 5 + length
      if needed == nil {
        if message.count < 4 { continue }
        // HandshakeType client_hello (1), uint24 length.
        guard message[0] == 1 else { return .notClientHello }
        let body = Int(message[1]) << 16 | Int(message[2]) << 8 | Int(message[3])
        guard body <= maxLength else { return .notClientHello }
        needed = 4 + body
      }
      if let needed, message.count >= needed {
        return message.withUnsafeBytes { parseBody(UnsafeRawBufferPointer(rebasing: $0[4..<needed])) }
      }
    }
  }

  /// The ClientHello body (RFC 8446 §4.1.2): version, random, session id, suites, compression,
  /// extensions.
  static func parseBody(_ b: UnsafeRawBufferPointer) -> Parse {
    var r = Reader(b)
    guard r.skip(2 + 32),  // legacy_version, random
      let sessionLength = r.u8(), r.skip(Int(sessionLength)),
      let suitesLength = r.u16(), r.skip(Int(suitesLength)),
      let compressionLength = r.u8(), r.skip(Int(compressionLength))
    else { return .notClientHello }
    // No extensions at all (very old clients): no SNI, no ALPN.
    guard r.remaining > 0 else { return .hello(serverName: nil, alpn: []) }
    guard let extensionsLength = r.u16(), Int(extensionsLength) == r.remaining else { return .notClientHello }
    var serverName: String? = nil
    var alpn: [String] = []
    var seen = Set<UInt16>()
    while r.remaining > 0 {
      guard let type = r.u16(), let length = r.u16(), let data = r.take(Int(length)) else { return .notClientHello }
      // RFC 8446 §4.2: the same extension twice is illegal; refusing it avoids choosing between two names.
      guard seen.insert(type).inserted else { return .notClientHello }
      var e = Reader(data)
      switch type {
      case 0:  // server_name
        guard let listLength = e.u16(), Int(listLength) == e.remaining else { return .notClientHello }
        while e.remaining > 0 {
          guard let nameType = e.u8(), let nameLength = e.u16(), let name = e.take(Int(nameLength)) else { return .notClientHello }
          // host_name (0), the only type defined; at most one per type (RFC 6066 §3).
          if nameType == 0 {
            guard serverName == nil, !name.isEmpty else { return .notClientHello }
            serverName = String(decoding: name, as: UTF8.self)
          }
        }
      case 16:  // application_layer_protocol_negotiation
        guard let listLength = e.u16(), Int(listLength) == e.remaining, listLength > 0 else { return .notClientHello }
        while e.remaining > 0 {
          guard let protocolLength = e.u8(), protocolLength > 0, let name = e.take(Int(protocolLength)) else { return .notClientHello }
          alpn.append(String(decoding: name, as: UTF8.self))
        }
      default:
        break
      }
    }
    return .hello(serverName: serverName, alpn: alpn)
  }

  struct Reader {
    let bytes: UnsafeRawBufferPointer
    var at = 0
    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }
    var remaining: Int { bytes.count - at }
    mutating func skip(_ n: Int) -> Bool {
      guard n >= 0, remaining >= n else { return false }
      at += n
      return true
    }
    mutating func u8() -> UInt8? {
      guard remaining >= 1 else { return nil }
      defer { at += 1 }
      return bytes[at]
    }
    mutating func u16() -> UInt16? {
      guard remaining >= 2 else { return nil }
      defer { at += 2 }
      return UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1])
    }
    mutating func take(_ n: Int) -> UnsafeRawBufferPointer? {
      guard n >= 0, remaining >= n else { return nil }
      defer { at += n }
      return UnsafeRawBufferPointer(rebasing: bytes[at..<(at + n)])
    }
  }
}
