import NIOCore
import NIOEmbedded
import NIOHTTP1
import GatewayCore

@testable import GatewayServer

/// Request-head validation (PRODUCT.md §9.4) behind NIO's HTTP/1 parser, as the gateway runs it:
/// bytes → HTTPRequestDecoder → RequestValidation.validateHTTP1. Never crashes; an accepted request
/// has a normalised host, an origin-form target (or `*` for OPTIONS) and exactly one framing.
let limits = RequestLimits(maxHeaderBytes: 32768, maxHeaderCount: 100, maxBodyBytes: 10_485_760, maxURIBytes: 8192)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let channel = EmbeddedChannel()
  defer { _ = try? channel.finish() }
  try? channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
  var buffer = channel.allocator.buffer(capacity: size)
  buffer.writeBytes(UnsafeBufferPointer(start: data, count: size))
  _ = try? channel.writeInbound(buffer)
  while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
    guard case .head(let head) = part else { continue }
    if case .success(let v) = RequestValidation.validateHTTP1(head, limits: limits) {
      precondition(!v.host.isEmpty && v.host == v.host.lowercased(), "host not normalised: \(v.host.debugDescription)")
      precondition(v.target.hasPrefix("/") || (v.target == "*" && head.method == .OPTIONS), "target not origin-form: \(v.target.debugDescription)")
      precondition(v.path.utf8.count <= v.target.utf8.count)
      // What is forwarded is what routes matched: the normal form, a fixed point (PRODUCT.md §3).
      if v.target != "*" {
        precondition(v.target.hasPrefix(v.path), "path \(v.path.debugDescription) is not the start of \(v.target.debugDescription)")
        guard case .success(let n) = RequestPath.normalize(target: v.target), n.target == v.target, n.path == v.path else {
          preconditionFailure("forwarded target not in normal form: \(v.target.debugDescription)")
        }
      }
    }
  }
  return 0
}
