import Foundation
import GatewayCore

/// Reads snapshot files, validates them, and keeps the last accepted one on disk (PRODUCT.md §6).
///
/// All work here runs off the event loops (the caller picks a thread); publishing is one atomic swap
/// in ``SnapshotStore``.
public struct SnapshotLoader: Sendable {
  /// The snapshot file (`snapshot.path`).
  public let path: String
  /// Where the last accepted snapshot is kept (`snapshot.state_dir`).
  public let stateDirectory: String
  public let platform: PlatformHosts
  /// Called every couple of seconds during a long load (the start log's progress lines).
  public var progress: SnapshotLoadProgress.Handler?

  /// File name of the last-known-good copy inside the state directory.
  public static let lastKnownGoodName = "last-known-good.json"

  public init(path: String, stateDirectory: String, platform: PlatformHosts) {
    self.path = path
    self.stateDirectory = stateDirectory
    self.platform = platform
  }

  public var lastKnownGoodPath: String { (stateDirectory as NSString).appendingPathComponent(Self.lastKnownGoodName) }

  /// Reads and validates the snapshot at `path` (streamed: the document is never held whole).
  public func loadFile(_ path: String) throws(SnapshotError) -> TenantTable {
    do {
      return try SnapshotStreamParser.parse(path: path, platform: platform, progress: progress)
    } catch {
      if case .unreadable(_, let reason) = error { throw .unreadable(path: path, reason: reason) }
      throw error
    }
  }

  /// Loads the configured snapshot; persists it as last-known-good when accepted. When the source is
  /// broken, falls back to the last-known-good copy (and reports the source's error).
  public func loadAtStart(into store: SnapshotStore) throws(SnapshotError) {
    do {
      let table = try loadFile(path)
      persistLastKnownGood(from: path)
      store.publish(table, source: "file:\(path)")
    } catch {
      guard FileManager.default.fileExists(atPath: lastKnownGoodPath) else { throw error }
      let table = try loadFile(lastKnownGoodPath)
      store.publish(table, source: "last-known-good:\(lastKnownGoodPath)")
      store.recordFailure(error.messages)
    }
  }

  /// Re-reads the source; on success publishes and persists, on failure keeps the serving table.
  @discardableResult
  public func reload(into store: SnapshotStore) -> Result<TenantTable, SnapshotError> {
    do {
      let table = try loadFile(path)
      persistLastKnownGood(from: path)
      store.publish(table, source: "file:\(path)")
      return .success(table)
    } catch {
      store.recordFailure(error.messages)
      return .failure(error)
    }
  }

  /// Writes the accepted snapshot atomically: temp file, fsync, rename, fsync of the directory.
  public func persistLastKnownGood(_ bytes: [UInt8]) {
    try? AtomicFile.write(bytes, to: lastKnownGoodPath)
  }

  /// Copies the accepted snapshot file to the last-known-good path, atomically and streamed.
  /// (A file replaced between parse and copy is caught by re-validating at the next start.)
  public func persistLastKnownGood(from source: String) {
    try? AtomicFile.copy(from: source, to: lastKnownGoodPath)
  }
}

/// Crash-safe replacement of a file: readers see the old or the new content, never a torn one.
public enum AtomicFile {
  /// Streams `source` into `path` through a temp file, fsync and rename.
  public static func copy(from source: String, to path: String) throws {
    let input = open(source, O_RDONLY | O_CLOEXEC)
    guard input >= 0 else { throw FileBytes.IOError(description: "open \(source): \(String(cString: strerror(errno)))") }
    defer { close(input) }
    try write(to: path) { out in
      var buffer = [UInt8](repeating: 0, count: 1 << 20)
      while true {
        let n = buffer.withUnsafeMutableBytes { Foundation.read(input, $0.baseAddress!, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n < 0 { return false }
        if n == 0 { return true }
        guard buffer.withUnsafeBytes({ writeAll(out, UnsafeRawBufferPointer(rebasing: $0[0..<n])) }) else { return false }
      }
    }
  }

  static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
    var written = 0
    while written < bytes.count {
      let n = Foundation.write(fd, bytes.baseAddress! + written, bytes.count - written)
      if n < 0 && errno == EINTR { continue }
      if n <= 0 { return false }
      written += n
    }
    return true
  }

  /// Writes `path` atomically with `produce` filling the temp file's descriptor.
  public static func write(to path: String, _ produce: (Int32) -> Bool) throws {
    let dir = (path as NSString).deletingLastPathComponent
    try FileManager.default.createDirectory(atPath: dir.isEmpty ? "." : dir, withIntermediateDirectories: true)
    let temp = path + ".tmp.\(getpid())"
    let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw FileBytes.IOError(description: "open \(temp): \(String(cString: strerror(errno)))") }
    let ok = produce(fd) && fsync(fd) == 0
    close(fd)
    guard ok, rename(temp, path) == 0 else {
      unlink(temp)
      throw FileBytes.IOError(description: "write \(path): \(String(cString: strerror(errno)))")
    }
    let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY)
    if dfd >= 0 {
      fsync(dfd)
      close(dfd)
    }
  }

  public static func write(_ bytes: [UInt8], to path: String) throws {
    try write(to: path) { fd in bytes.withUnsafeBytes { writeAll(fd, $0) } }
  }}
