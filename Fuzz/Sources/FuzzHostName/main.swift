import GatewayCore

/// Host normalisation (PRODUCT.md §2) never crashes, and is idempotent: a normalised host
/// normalises to itself (else a lookup key could differ from the key stored at reload time).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let raw = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
  if let host = HostName.normalize(raw) {
    precondition(HostName.normalize(host) == host, "not idempotent: \(raw.debugDescription) → \(host.debugDescription)")
    precondition(!host.utf8.contains { $0 >= 0x41 && $0 <= 0x5A }, "upper case survived: \(host.debugDescription)")
    precondition(!host.isEmpty && host.utf8.count <= 253, "bad length: \(host.debugDescription)")
  }
  return 0
}
