import Foundation
import GatewayCore

/// Folds a journal into its snapshot file (`tenant-gateway snapshot compact`, and the gateway past
/// `snapshot.compact_after_bytes`; PRODUCT.md §6).
///
/// Streamed, in memory bounded by the journal, not the snapshot: the final record of every shop and
/// key the journal touches is kept; the snapshot is walked element by element, untouched elements
/// copied byte for byte (unknown fields and all), touched ones replaced or dropped, new ones added
/// at the end of their array. Crash safety, step by step:
/// 1. the new snapshot is written to a temp file and fsynced (a crash leaves the old pair intact);
/// 2. under the journal lock, lines appended meanwhile are copied into a new journal temp file;
/// 3. the snapshot is renamed into place: its version is the last folded line's, so a reader that
///    finds the old journal beside it replays only the lines after that one (``ChangeJournal/pending(_:snapshotVersion:)``);
/// 4. the new journal (header for the new version, plus the copied lines) is renamed into place.
/// At no point is an acknowledged edit absent from both the snapshot and the journal a reader
/// would pair it with.
public enum SnapshotCompactor {
  public struct Outcome: Sendable {
    /// The new snapshot's version (unchanged when nothing was pending).
    public var version: String
    /// Change sets folded in.
    public var folded: Int
    /// Lines appended during the fold, kept in the new journal.
    public var kept: Int
    public var seconds: Double
  }

  /// Where a test stops the compaction (the kill-at-every-step tests).
  public enum Step: String, Sendable, CaseIterable {
    case snapshotWritten = "snapshot-written"
    case journalWritten = "journal-written"
    case snapshotRenamed = "snapshot-renamed"
  }

  public struct Failure: Error, CustomStringConvertible {
    public var description: String
  }

  /// Compacts `snapshotPath` with `journal`. `stopAfter` (tests only) makes it exit the process
  /// right after that step, as a crash would.
  public static func compact(snapshotPath: String, journal: ChangeJournal, stopAfter: Step? = nil) throws -> Outcome {
    let started = Date()
    let snapshotVersion = try SnapshotStreamParser.version(path: snapshotPath)
    let contents = try journal.read()
    guard let pending = ChangeJournal.pending(contents, snapshotVersion: snapshotVersion) else {
      throw Failure(description: "\(journal.path) does not extend \(snapshotPath) (version \(snapshotVersion)): it belongs to another snapshot")
    }
    guard let last = pending.last else {
      // Lines already folded into the snapshot (a compaction stopped before its last rename): drop them.
      if !contents.lines.isEmpty {
        try journal.withLock {
          let now = try journal.read()
          if ChangeJournal.pending(now, snapshotVersion: snapshotVersion)?.isEmpty == true {
            try journal.reset(for: snapshotVersion)
          }
        }
      }
      return Outcome(version: snapshotVersion, folded: 0, kept: 0, seconds: Date().timeIntervalSince(started))
    }
    // The final state of everything the pending change sets touch, in their order.
    var shops: [String: ShopInput?] = [:]
    var keys: [String: KeyInput?] = [:]
    var droppedKeysOfShop = Set<String>()
    for line in pending {
      let change = try ChangeSetCodec.decode(line.bytes)
      for s in change.shops { shops[s.id] = s }
      for id in change.removeShops {
        shops[id] = .some(nil)
        droppedKeysOfShop.insert(id)
        for (k, v) in keys where v?.shopID == id { keys[k] = .some(nil) }
      }
      for k in change.apiKeys { keys[k.id] = k.revoked ? .some(nil) : k }
      for id in change.removeApiKeys { keys[id] = .some(nil) }
    }

    let temp = snapshotPath + ".compact.\(getpid())"
    let out = try BufferedWriter(path: temp)
    do {
      try out.write("{\"version\":")
      var v = ""
      JSONText.appendQuoted(last.version, to: &v)
      try out.write(v)
      var first = true
      var inArray = ""
      _ = try SnapshotStreamParser.walk(
        path: snapshotPath,
        event: { event in
          switch event {
          case .field(let name, let raw):
            var n = ",\n"
            JSONText.appendQuoted(name, to: &n)
            try out.write(n + ":")
            try out.write(raw)
          case .arrayStart(let name):
            try out.write(name == "shops" ? ",\n\"shops\":[" : ",\n\"apiKeys\":[")
            first = true
            inArray = name
          case .arrayEnd(let name):
            // New records (and replaced ones) go at the end of their array.
            let added: [String] =
              name == "shops"
              ? shops.values.compactMap { $0 }.sorted { $0.id < $1.id }.map(SnapshotJSON.shop)
              : keys.values.compactMap { $0 }.sorted { $0.id < $1.id }.map(SnapshotJSON.key)
            for record in added {
              try out.write(first ? "\n" : ",\n")
              first = false
              try out.write(record)
            }
            try out.write("]")
            inArray = ""
          }
        },
        shop: { parsed, raw in
          guard let parsed else { return }
          let id = parsed.id.withBytes { String(decoding: $0, as: UTF8.self) }
          if shops[id] != nil { return }  // replaced or removed: its final record (if any) comes later
          try out.write(first ? "\n" : ",\n")
          first = false
          try out.write(trimmed(raw))
        },
        key: { parsed, raw in
          guard let parsed else { return }
          let id = parsed.id.withBytes { String(decoding: $0, as: UTF8.self) }
          if keys[id] != nil { return }
          if droppedKeysOfShop.contains(parsed.shop.withBytes { String(decoding: $0, as: UTF8.self) }) { return }
          try out.write(first ? "\n" : ",\n")
          first = false
          try out.write(trimmed(raw))
        })
      _ = inArray
      try out.write("\n}\n")
      try out.finish()
    } catch {
      out.abandon()
      unlink(temp)
      throw error
    }
    if stopAfter == .snapshotWritten { exit(0) }

    // Lines appended since the journal was read move to the new journal.
    var kept = 0
    try journal.withLock {
      let tail = try journal.read(from: contents.end)
      let changed = ChangeJournal.identity(journal.path)?.0 != contents.identity
      if changed {
        unlink(temp)
        throw Failure(description: "\(journal.path) was replaced while compacting; nothing changed")
      }
      kept = tail.lines.count
      var bytes = Array(ChangeJournal.header(for: last.version).utf8)
      for l in tail.lines {
        bytes += l.bytes
        bytes.append(0x0A)
      }
      let journalTemp = journal.path + ".compact.\(getpid())"
      try AtomicFile.write(to: journalTemp) { fd in bytes.withUnsafeBytes { AtomicFile.writeAll(fd, $0) } }
      if stopAfter == .journalWritten { exit(0) }
      guard rename(temp, snapshotPath) == 0 else {
        throw Failure(description: "rename \(temp): \(String(cString: strerror(errno)))")
      }
      AtomicFile.syncDirectory(of: snapshotPath)
      if stopAfter == .snapshotRenamed { exit(0) }
      guard rename(journalTemp, journal.path) == 0 else {
        throw Failure(description: "rename \(journalTemp): \(String(cString: strerror(errno)))")
      }
      AtomicFile.syncDirectory(of: journal.path)
    }
    return Outcome(version: last.version, folded: pending.count, kept: kept, seconds: Date().timeIntervalSince(started))
  }

  /// An element's raw bytes without the whitespace before it.
  static func trimmed(_ raw: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
    var i = 0
    while i < raw.count, raw[i] == 0x20 || raw[i] == 0x0A || raw[i] == 0x0D || raw[i] == 0x09 { i += 1 }
    return UnsafeRawBufferPointer(rebasing: raw[i...])
  }
}

/// Buffered sequential writes to a new file, fsynced on finish.
final class BufferedWriter {
  let fd: Int32
  var buffer: [UInt8] = []
  let path: String

  init(path: String) throws {
    self.path = path
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw FileBytes.IOError(description: "open \(path): \(String(cString: strerror(errno)))") }
    buffer.reserveCapacity(1 << 20)
  }

  func write(_ s: String) throws { try write(Array(s.utf8)) }
  func write(_ raw: UnsafeRawBufferPointer) throws {
    buffer.append(contentsOf: raw)
    if buffer.count >= 1 << 20 { try flush() }
  }
  func write(_ bytes: [UInt8]) throws {
    buffer.append(contentsOf: bytes)
    if buffer.count >= 1 << 20 { try flush() }
  }
  func flush() throws {
    let ok = buffer.withUnsafeBytes { AtomicFile.writeAll(fd, $0) }
    buffer.removeAll(keepingCapacity: true)
    guard ok else { throw FileBytes.IOError(description: "write \(path): \(String(cString: strerror(errno)))") }
  }
  func finish() throws {
    try flush()
    guard fsync(fd) == 0 else { throw FileBytes.IOError(description: "fsync \(path): \(String(cString: strerror(errno)))") }
    close(fd)
  }
  func abandon() { close(fd) }
}
