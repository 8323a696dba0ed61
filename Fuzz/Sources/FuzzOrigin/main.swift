import GatewayCore

/// Origin parsing (PRODUCT.md §3) never crashes and is idempotent; a normalised origin has no
/// path, userinfo, query or fragment.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let raw = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
  for trailing in [false, true] {
    if let origin = Origin.normalize(raw, allowTrailingSlash: trailing) {
      precondition(Origin.normalize(origin) == origin, "not idempotent: \(raw.debugDescription) → \(origin.debugDescription)")
      let afterScheme = origin.split(separator: "://", maxSplits: 1).last ?? ""
      precondition(!afterScheme.contains { "/@?#".contains($0) }, "path, userinfo or query kept: \(origin.debugDescription)")
    }
  }
  return 0
}
