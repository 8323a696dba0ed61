import Dispatch
import Foundation

/// Reloads the snapshot file when it changes: a cheap `stat` every interval comparing device,
/// inode, size and modification time with the last load. Atomic replacements (rename) change the
/// inode; in-place edits change size or mtime. A half-written file is rejected by validation and
/// picked up again once the writer finishes (its mtime moves on).
public final class SnapshotFileWatcher: @unchecked Sendable {
  struct Signature: Equatable {
    var dev: UInt64
    var ino: UInt64
    var size: Int64
    var mtimeSec: Int
    var mtimeNsec: Int
  }

  let path: String
  let interval: Double
  let onChange: @Sendable () -> Void
  private let queue = DispatchQueue(label: "tenant-gateway.snapshot-watch")
  private var timer: DispatchSourceTimer?
  private let lock = NSLock()
  private var lastLoaded: Signature?

  /// - Parameters:
  ///   - interval: seconds between checks (`snapshot.poll_interval_s`).
  ///   - onChange: called (on a background queue) when the file differs from the last load.
  public init(path: String, interval: Double, onChange: @escaping @Sendable () -> Void) {
    self.path = path
    self.interval = interval
    self.onChange = onChange
  }

  static func signature(_ path: String) -> Signature? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return Signature(
      dev: UInt64(st.st_dev), ino: UInt64(st.st_ino), size: Int64(st.st_size), mtimeSec: Int(st.st_mtim.tv_sec),
      mtimeNsec: Int(st.st_mtim.tv_nsec))
  }

  /// Records the file as it is now (call right after a load attempt, whatever its outcome).
  public func noteLoaded() {
    let s = Self.signature(path)
    lock.withLock { lastLoaded = s }
  }

  public func start() {
    let t = DispatchSource.makeTimerSource(queue: queue)
    t.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(50))
    t.setEventHandler { [weak self] in self?.check() }
    t.resume()
    timer = t
  }

  public func stop() {
    timer?.cancel()
    timer = nil
  }

  func check() {
    guard let now = Self.signature(path) else { return }
    let changed = lock.withLock { now != lastLoaded }
    if changed {
      lock.withLock { lastLoaded = now }
      onChange()
    }
  }
}
