import Foundation
import GatewayCore

/// Writes a table as a snapshot document (the last-known-good copy of a database source), streamed
/// and atomic: temp file, fsync, rename.
public enum SnapshotWriter {
  public static func write(_ table: TenantTable, to path: String) throws {
    var failed = false
    try AtomicFile.write(to: path) { fd in
      var buffer: [UInt8] = []
      buffer.reserveCapacity(1 << 20)
      func emit(_ s: String) {
        buffer.append(contentsOf: s.utf8)
        if buffer.count >= 1 << 20 {
          if !buffer.withUnsafeBytes({ AtomicFile.writeAll(fd, $0) }) { failed = true }
          buffer.removeAll(keepingCapacity: true)
        }
      }
      var v = "{\"version\":"
      JSONText.appendQuoted(table.version, to: &v)
      emit(v + ",\n\"shops\":[")
      var first = true
      for s in table.shops {
        emit((first ? "\n" : ",\n") + SnapshotJSON.shop(table.shopInput(s)))
        first = false
      }
      emit("],\n\"apiKeys\":[")
      first = true
      for k in table.keys {
        emit((first ? "\n" : ",\n") + SnapshotJSON.key(table.keyInput(k)))
        first = false
      }
      emit("]}\n")
      return !failed && buffer.withUnsafeBytes { AtomicFile.writeAll(fd, $0) }
    }
  }
}
