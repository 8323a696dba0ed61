import GatewayCore

/// The request path's normal form (PRODUCT.md §3) never crashes, and an accepted target is safe to
/// match and forward: normalising it again changes nothing (else the rule matched and the path a
/// backend routes could differ), and none of the shapes a backend reads as another path survives —
/// no `//`, no `.`/`..` segment, no `;`, `#`, `\`, encoded slash, NUL or escaped unreserved byte.
/// The query is carried as received.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  var bytes = [UInt8(ascii: "/")]
  bytes.append(contentsOf: UnsafeBufferPointer(start: data, count: size))
  let raw = String(decoding: bytes, as: UTF8.self)
  guard case .success(let n) = RequestPath.normalize(target: raw) else { return 0 }
  guard case .success(let again) = RequestPath.normalize(target: n.target), again == n else {
    preconditionFailure("not a fixed point: \(raw.debugDescription) → \(n.target.debugDescription)")
  }
  let path = Array(n.path.utf8)
  precondition(path.first == UInt8(ascii: "/"), "no leading slash: \(n.path.debugDescription)")
  precondition(n.target.utf8.starts(with: n.path.utf8), "target does not start with the path")
  for (i, b) in path.enumerated() {
    precondition(b > 0x20 && b < 0x7F && b != UInt8(ascii: ";") && b != UInt8(ascii: "#") && b != UInt8(ascii: "\\"), "byte \(b) in \(n.path.debugDescription)")
    if b == UInt8(ascii: "/") { precondition(i + 1 >= path.count || path[i + 1] != UInt8(ascii: "/"), "// in \(n.path.debugDescription)") }
    if b == UInt8(ascii: "%") {
      precondition(i + 2 < path.count, "cut escape in \(n.path.debugDescription)")
      let hex = String(decoding: path[(i + 1)...(i + 2)], as: UTF8.self)
      precondition(hex == hex.uppercased(), "lower-case escape in \(n.path.debugDescription)")
      let v = UInt8(hex, radix: 16)!
      let unreserved = (v >= 0x41 && v <= 0x5A) || (v >= 0x61 && v <= 0x7A) || (v >= 0x30 && v <= 0x39) || [0x2D, 0x2E, 0x5F, 0x7E].contains(v)
      precondition(!unreserved && v != 0x2F && v != 0x5C && v >= 0x20 && v != 0x7F, "escape %\(hex) survived in \(n.path.debugDescription)")
    }
  }
  for segment in n.path.split(separator: "/", omittingEmptySubsequences: false) {
    precondition(segment != "." && segment != "..", "dot segment in \(n.path.debugDescription)")
  }
  if let q = raw.firstIndex(of: "?") {
    precondition(n.target.hasSuffix(String(raw[q...])), "query changed: \(raw.debugDescription) → \(n.target.debugDescription)")
  }
  return 0
}
