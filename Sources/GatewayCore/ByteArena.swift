/// Many short byte strings stored back to back in one array, addressed by index.
///
/// The tenant table keeps millions of names (shop ids, host names, key ids, origins) this way: one
/// allocation per kind instead of one per name, and 4 bytes of overhead per name.
public struct ByteArena: Sendable {
  @usableFromInline var bytes: [UInt8] = []
  /// `ends[i]` is the end offset of element `i`; element `i` starts at `ends[i - 1]` (or 0).
  @usableFromInline var ends: [UInt32] = []

  public init() {}

  /// Number of elements.
  @inlinable public var count: Int { ends.count }

  /// Total bytes held (payload plus offsets).
  public var byteSize: Int { bytes.capacity + ends.capacity * 4 }

  /// Reserves room for `elements` elements of `bytes` bytes in all.
  public mutating func reserve(elements: Int, bytes byteCount: Int) {
    ends.reserveCapacity(elements)
    bytes.reserveCapacity(byteCount)
  }

  /// Appends an element and returns its index.
  @discardableResult
  public mutating func append<C: Collection<UInt8>>(_ element: C) -> Int {
    bytes.append(contentsOf: element)
    precondition(bytes.count <= Int(UInt32.max), "ByteArena over 4 GiB")
    ends.append(UInt32(truncatingIfNeeded: bytes.count))
    return ends.count - 1
  }

  /// Appends a string's UTF-8 bytes and returns the element's index.
  @discardableResult
  public mutating func append(_ string: String) -> Int {
    append(string.utf8)
  }

  @inlinable func range(_ i: Int) -> Range<Int> {
    let start = i == 0 ? 0 : Int(ends[i - 1])
    return start..<Int(ends[i])
  }

  /// Calls `body` with the bytes of element `i`.
  @inlinable
  public func withElement<R>(_ i: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    let r = range(i)
    return try bytes.withUnsafeBytes { all in
      try body(UnsafeRawBufferPointer(rebasing: all[r]))
    }
  }

  /// Element `i` as a `String` (allocates; for logs, admin pages and tokens built off the hot path).
  public func string(_ i: Int) -> String {
    withElement(i) { String(decoding: $0, as: UTF8.self) }
  }

  /// Byte length of element `i`.
  @inlinable public func length(_ i: Int) -> Int { range(i).count }

  /// True when element `i` equals `other` byte for byte.
  @inlinable
  public func equals(_ i: Int, _ other: UnsafeRawBufferPointer) -> Bool {
    let r = range(i)
    guard r.count == other.count else { return false }
    return bytes.withUnsafeBytes { all in
      guard r.count > 0 else { return true }
      return memcmpBytes(all.baseAddress! + r.lowerBound, other.baseAddress!, r.count)
    }
  }

  /// Releases spare capacity after building.
  mutating func shrinkToFit() {
    bytes = Array(bytes)
    ends = Array(ends)
  }
}

@inlinable
func memcmpBytes(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
  var i = 0
  while i + 8 <= n {
    if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
      return false
    }
    i += 8
  }
  while i < n {
    if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
    i += 1
  }
  return true
}

/// A seeded 64-bit hash of a short byte string (host names, ids), eight bytes per step.
@inlinable
public func hashBytes(_ p: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
  var h = seed ^ (UInt64(p.count) &* 0x9E37_79B9_7F4A_7C15)
  var i = 0
  let n = p.count
  while i + 8 <= n {
    h = mix64(h ^ p.loadUnaligned(fromByteOffset: i, as: UInt64.self))
    i += 8
  }
  var tail: UInt64 = 0
  var shift: UInt64 = 0
  while i < n {
    tail |= UInt64(p[i]) << shift
    shift += 8
    i += 1
  }
  return mix64(h ^ tail ^ 0xA076_1D64_78BD_642F)
}

/// SplitMix64's finaliser: a cheap full-avalanche mix.
@inlinable
func mix64(_ x: UInt64) -> UInt64 {
  var z = x &* 0xBF58_476D_1CE4_E5B9
  z ^= z >> 31
  z = z &* 0x94D0_49BB_1331_11EB
  z ^= z >> 29
  return z
}

/// An open-addressing index from a hash to an element index, with linear probing and a load
/// factor of at most one half. Stores only 4 bytes per slot; callers compare the element itself.
public struct SlotIndex: Sendable {
  /// 0 = empty, otherwise element index + 1.
  @usableFromInline var slots: [UInt32]
  @usableFromInline var mask: Int
  /// Elements inserted.
  public private(set) var count = 0

  /// An index sized for `expected` elements (it grows past that when inserted into with a rehash).
  public init(expected: Int) {
    var capacity = 8
    while capacity < expected * 2 { capacity <<= 1 }
    slots = [UInt32](repeating: 0, count: capacity)
    mask = capacity - 1
  }

  public var byteSize: Int { slots.capacity * 4 }

  /// Finds the element whose hash is `hash` and for which `matches` is true.
  @inlinable
  public func find(hash: UInt64, matches: (Int) -> Bool) -> Int? {
    var i = Int(truncatingIfNeeded: hash) & mask
    return slots.withUnsafeBufferPointer { s in
      while true {
        let v = s[i]
        if v == 0 { return nil }
        if matches(Int(v) - 1) { return Int(v) - 1 }
        i = (i + 1) & mask
      }
    }
  }

  /// Inserts `index` unless an element matching already exists; returns that element's index if so.
  /// When the table would pass half full it doubles, asking `rehash` for each element's hash.
  public mutating func insert(hash: UInt64, index: Int, matches: (Int) -> Bool, rehash: ((Int) -> UInt64)? = nil) -> Int? {
    precondition(index < Int(UInt32.max))
    if let existing = find(hash: hash, matches: matches) { return existing }
    if (count + 1) * 2 > slots.count, let rehash {
      grow(rehash)
    }
    var i = Int(truncatingIfNeeded: hash) & mask
    while slots[i] != 0 { i = (i + 1) & mask }
    slots[i] = UInt32(index + 1)
    count += 1
    return nil
  }

  private mutating func grow(_ rehash: (Int) -> UInt64) {
    let old = slots
    slots = [UInt32](repeating: 0, count: old.count * 2)
    mask = slots.count - 1
    for v in old where v != 0 {
      var i = Int(truncatingIfNeeded: rehash(Int(v) - 1)) & mask
      while slots[i] != 0 { i = (i + 1) & mask }
      slots[i] = v
    }
  }
}
