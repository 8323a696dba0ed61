import Foundation
import GatewayCore

/// The file source's journal (PRODUCT.md §6 "Changes"): `{"journalFor": "<snapshot version>"}` on
/// the first line, then one change set per line, appended under an exclusive `flock` on
/// `<path>.lock` and fsynced before the append counts.
///
/// A line without its newline is an append that never finished (no writer acknowledged it): it
/// is ignored by readers and cut off by the next writer before it appends.
public struct ChangeJournal: Sendable {
  public let path: String
  public var lockPath: String { path + ".lock" }

  public init(path: String) { self.path = path }

  /// One complete line: its change set's version and its bytes (without the newline).
  public struct Line: Sendable {
    public var version: String
    public var bytes: [UInt8]
    /// Byte offset just past this line's newline.
    public var end: Int
  }

  /// What the journal holds past its header.
  public struct Contents: Sendable {
    /// The header's snapshot version (nil: no header, or no file).
    public var journalFor: String?
    public var lines: [Line]
    /// Offset past the last complete line (where the next reader starts).
    public var end: Int
    /// The file's identity, to notice a replaced journal.
    public var identity: FileIdentity?
  }

  /// Device and inode.
  public struct FileIdentity: Equatable, Sendable {
    public var dev: UInt64
    public var ino: UInt64
  }

  public static func header(for version: String) -> String {
    var out = "{\"journalFor\":"
    JSONText.appendQuoted(version, to: &out)
    return out + "}\n"
  }

  public static func identity(_ path: String) -> (FileIdentity, Int)? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return (FileIdentity(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino)), Int(st.st_size))
  }

  /// Reads the journal from `offset` (0: the whole file with its header). A missing file is empty.
  public func read(from offset: Int = 0) throws(FileBytes.IOError) -> Contents {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
      if errno == ENOENT { return Contents(journalFor: nil, lines: [], end: 0, identity: nil) }
      throw FileBytes.IOError(description: "open \(path): \(String(cString: strerror(errno)))")
    }
    defer { close(fd) }
    var st = stat()
    fstat(fd, &st)
    let identity = FileIdentity(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    lseek(fd, off_t(offset), SEEK_SET)
    while true {
      let n = chunk.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress!, $0.count) }
      if n < 0 && errno == EINTR { continue }
      if n < 0 { throw FileBytes.IOError(description: "read \(path): \(String(cString: strerror(errno)))") }
      if n == 0 { break }
      bytes.append(contentsOf: chunk[0..<n])
    }
    var contents = Contents(journalFor: nil, lines: [], end: offset, identity: identity)
    var start = 0
    while let nl = bytes[start...].firstIndex(of: 0x0A) {
      let line = Array(bytes[start..<nl])
      start = nl + 1
      contents.end = offset + start
      if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
      if offset == 0 && contents.lines.isEmpty && contents.journalFor == nil, let header = Self.journalFor(line) {
        contents.journalFor = header
        continue
      }
      contents.lines.append(Line(version: Self.version(of: line) ?? "", bytes: line, end: contents.end))
    }
    return contents
  }

  /// The `journalFor` of a header line, or nil when the line is not one.
  static func journalFor(_ line: [UInt8]) -> String? {
    guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any], object.count == 1 else { return nil }
    return object["journalFor"] as? String
  }

  /// A change set line's `version` (without decoding the rest).
  static func version(of line: [UInt8]) -> String? {
    var out: String? = nil
    return line.withUnsafeBytes { raw -> String? in
      var reader = JSONReader(raw)
      try? reader.readObject { (r, key) throws(JSONReader.ParseError) in
        if key == "version", try r.peek() == UInt8(ascii: "\"") { out = try r.readString() } else { try r.skipValue() }
      }
      return out
    }
  }

  /// Which lines extend a snapshot of `snapshotVersion`: those after the last line of that version
  /// (the snapshot is a compaction that already holds them), or all when the header names it; nil
  /// when the journal belongs to another snapshot (it is superseded).
  public static func pending(_ contents: Contents, snapshotVersion: String) -> [Line]? {
    if let i = contents.lines.lastIndex(where: { $0.version == snapshotVersion }) {
      return Array(contents.lines[(i + 1)...])
    }
    if contents.journalFor == snapshotVersion { return contents.lines }
    if contents.journalFor == nil && contents.lines.isEmpty { return [] }
    return nil
  }

  /// Runs `body` holding the journal's exclusive lock (every writer takes it; readers need not).
  public func withLock<T>(_ body: () throws -> T) throws -> T {
    let dir = (path as NSString).deletingLastPathComponent
    if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
    let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw FileBytes.IOError(description: "open \(lockPath): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    while flock(fd, LOCK_EX) != 0 {
      guard errno == EINTR else { throw FileBytes.IOError(description: "lock \(lockPath): \(String(cString: strerror(errno)))") }
    }
    defer { flock(fd, LOCK_UN) }
    return try body()
  }

  /// Appends lines (each one change set, no newline inside) and fsyncs; call under ``withLock(_:)``.
  /// Creates the journal with a header for `snapshotVersion` when it does not exist, and cuts off
  /// an unfinished last line first. Returns the offset past the appended lines.
  @discardableResult
  public func append(_ lines: [String], creatingFor snapshotVersion: String) throws -> Int {
    let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw FileBytes.IOError(description: "open \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var st = stat()
    fstat(fd, &st)
    var size = Int(st.st_size)
    var out = ""
    if size == 0 {
      out = Self.header(for: snapshotVersion)
    } else {
      // Find the last newline; anything after it is a torn append.
      var last: UInt8 = 0
      pread(fd, &last, 1, off_t(size - 1))
      if last != 0x0A {
        var cut = size
        var b: UInt8 = 0
        while cut > 0 {
          pread(fd, &b, 1, off_t(cut - 1))
          if b == 0x0A { break }
          cut -= 1
        }
        ftruncate(fd, off_t(cut))
        size = cut
      }
    }
    for l in lines { out += l + "\n" }
    let bytes = Array(out.utf8)
    let ok = bytes.withUnsafeBytes { raw -> Bool in
      var written = 0
      while written < raw.count {
        let n = pwrite(fd, raw.baseAddress! + written, raw.count - written, off_t(size + written))
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return false }
        written += n
      }
      return true
    }
    guard ok, fdatasync(fd) == 0 else {
      ftruncate(fd, off_t(size))
      throw FileBytes.IOError(description: "append to \(path): \(String(cString: strerror(errno)))")
    }
    if size == 0 { AtomicFile.syncDirectory(of: path) }
    return size + bytes.count
  }

  /// Replaces the journal atomically with a header for `snapshotVersion` and `lines`.
  public func reset(for snapshotVersion: String, keeping lines: [Line] = []) throws {
    var bytes = Array(Self.header(for: snapshotVersion).utf8)
    for l in lines {
      bytes += l.bytes
      bytes.append(0x0A)
    }
    try AtomicFile.write(bytes, to: path)
  }

  /// Moves the journal aside (`<path>.superseded-<time>`) and starts an empty one.
  @discardableResult
  public func supersede(for snapshotVersion: String) throws -> String? {
    var moved: String? = nil
    if FileManager.default.fileExists(atPath: path) {
      let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
      let aside = "\(path).superseded-\(stamp)"
      guard rename(path, aside) == 0 else { throw FileBytes.IOError(description: "rename \(path): \(String(cString: strerror(errno)))") }
      moved = aside
    }
    try reset(for: snapshotVersion)
    return moved
  }
}

extension AtomicFile {
  /// fsync of the directory holding `path` (a created or renamed entry survives a crash).
  static func syncDirectory(of path: String) {
    let dir = (path as NSString).deletingLastPathComponent
    let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY)
    if dfd >= 0 {
      fsync(dfd)
      close(dfd)
    }
  }
}
