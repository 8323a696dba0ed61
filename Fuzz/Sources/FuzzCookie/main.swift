import GatewayCore

/// Cookie parsing (RFC 6265, sessions): never crashes; a found value never contains `;`, and
/// splitting the same bytes across several Cookie headers finds the same answer.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let raw = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
  let headers = raw.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
  let lookup = CookieHeader.find("session", in: headers)
  if case .value(let value) = lookup {
    precondition(!value.contains(";"), "value spans a separator: \(value.debugDescription)")
  }
  // The same pairs in one header (joined with "; ") give the same answer.
  let joined = CookieHeader.find("session", in: [headers.joined(separator: "; ")])
  precondition(joined == lookup, "one header vs several differ: \(raw.debugDescription)")
  return 0
}
