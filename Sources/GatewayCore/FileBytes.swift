import Foundation

/// Whole-file reads with POSIX calls (no Foundation `Data` copy of large files).
public enum FileBytes {
  public struct IOError: Error, CustomStringConvertible {
    public var description: String
    package init(description: String) { self.description = description }
  }

  /// Reads a whole file.
  public static func read(_ path: String) throws(IOError) -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw IOError(description: String(cString: strerror(errno))) }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw IOError(description: String(cString: strerror(errno))) }
    guard (st.st_mode & S_IFMT) == S_IFREG else { throw IOError(description: "not a regular file") }
    let size = Int(st.st_size)
    var out = [UInt8](repeating: 0, count: size)
    var done = 0
    let ok = out.withUnsafeMutableBytes { buf -> Bool in
      while done < size {
        let n = Foundation.read(fd, buf.baseAddress! + done, size - done)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return false }
        done += n
      }
      return true
    }
    guard ok else { throw IOError(description: "short read") }
    return out
  }
}
