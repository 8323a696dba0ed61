import Foundation
import GatewayCore
import GatewaySnapshot

/// Snapshot parsing (PRODUCT.md §6), differential: the in-memory parser and the streaming parser
/// (with a 64-byte window, so every refill path runs) must agree — both accept with the same
/// version and counts, or both reject. Neither may crash on any input.
let platform = PlatformHosts(apiHosts: ["api.platform.localhost"], dashboardHosts: [], domain: "platform.localhost")
let path = "/dev/shm/tgw-fuzz-snapshot-\(getpid()).json"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = UnsafeRawBufferPointer(start: data, count: size)
  let inMemory = Result { () throws(SnapshotError) in try SnapshotParser.parse(bytes, platform: platform, seed: 1) }
  guard let f = fopen(path, "w") else { return 0 }
  if size > 0 { fwrite(data, 1, size, f) }
  fclose(f)
  let streamed = Result { () throws(SnapshotError) in try SnapshotStreamParser.parse(path: path, platform: platform, seed: 1, windowSize: 64) }
  switch (inMemory, streamed) {
  case (.success(let a), .success(let b)):
    precondition(a.version == b.version && a.shopCount == b.shopCount && a.keyCount == b.keyCount, "parsers disagree on an accepted snapshot")
  case (.failure, .failure):
    break
  default:
    preconditionFailure("one parser accepted what the other rejected: \(inMemory) vs \(streamed)")
  }
  return 0
}
