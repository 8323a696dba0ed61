import GatewayCore

/// The PROXY protocol parser (listen.proxy_protocol) reads attacker-adjacent bytes: whatever a
/// balancer forwards first. It never crashes, never claims more bytes than it was given, decides
/// the same on any input it already decided on when more bytes follow (a header ends where it
/// ends), says "need more" only for a strict prefix of something it could still accept, and an
/// accepted source address is a canonical IPv4 or IPv6 text form.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  let result = ProxyProtocol.parse(bytes)
  switch result {
  case .needMoreData:
    precondition(size < ProxyProtocol.v2MaxLength, "needs more after \(size) bytes")
  case .invalid:
    // More bytes never rescue a refused start.
    let longer = ProxyProtocol.parse(bytes + [0x0D, 0x0A, 0x00])
    guard case .invalid = longer else { preconditionFailure("refused, then accepted with more bytes: \(longer)") }
  case .header(let header, let length):
    precondition(length > 0 && length <= size, "length \(length) of \(size) bytes")
    // The header is self-delimiting: trailing bytes do not change it.
    precondition(ProxyProtocol.parse(Array(bytes.prefix(length))) == result, "the header depends on bytes after it")
    precondition(ProxyProtocol.parse(bytes + [0x16, 0x03, 0x01]) == result, "the header depends on bytes after it")
    if let address = header.sourceAddress {
      let isV4 = address.split(separator: ".").count == 4 && !address.contains(":")
      precondition(isV4 || address.contains(":"), "source \(address) is no address")
      precondition(address.utf8.allSatisfy { $0 < 0x80 && $0 > 0x20 }, "source \(address.debugDescription)")
    }
    if let port = header.sourcePort { precondition((0...65535).contains(port)) }
  }
  return 0
}
