import Foundation

/// How the file source notices a changed snapshot: a cheap `stat` compared with the last load
/// (device, inode, size, modification time). Atomic replacements (rename) change the inode; in-place
/// edits change size or mtime. ``FileChangeSource`` polls it every `snapshot.poll_interval_s`.
public enum SnapshotFileWatcher {
  public struct Signature: Equatable, Sendable {
    var dev: UInt64
    var ino: UInt64
    var size: Int64
    var mtimeSec: Int
    var mtimeNsec: Int
  }

  /// The file as it is now (nil: it cannot be stat'ed).
  public static func signature(_ path: String) -> Signature? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return Signature(
      dev: UInt64(st.st_dev), ino: UInt64(st.st_ino), size: Int64(st.st_size), mtimeSec: Int(st.st_mtim.tv_sec),
      mtimeNsec: Int(st.st_mtim.tv_nsec))
  }
}
