import Foundation
import GatewayCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// `tls.custom_domain_certs_dir` (PRODUCT.md §7): merchants' custom-domain certificates as
/// `<domain>.pem` + `<domain>.key` files, loaded by SNI on first use instead of at start-up.
///
/// Why on demand: a platform has tens of thousands of custom domains; parsing every certificate and
/// building a TLS context for each at start-up is what makes HAProxy take minutes with a large
/// `crt` directory. Here start-up only lists the directory (names, no parsing); the first handshake
/// for a domain loads its files on a small thread pool (never on an event loop) and later ones reuse
/// the context from a bounded cache.
///
/// - The cache holds at most `capacity` contexts; when full, the least recently used of a random
///   sample of 8 is evicted (approximate LRU: O(1), no list to maintain).
/// - A name without files, or whose files fail to load, is remembered for `negativeTTL` (bounded),
///   so a client cannot make the gateway re-read the directory on every handshake.
/// - ``rescan()`` (every `snapshot.poll_interval_s`) re-lists the directory when it changed and drops
///   cached contexts whose files changed, so a renewed certificate is served without a restart.
final class CustomDomainCertificates: @unchecked Sendable {  // state behind `lock`
  struct Loaded: Sendable {
    let names: CertificateNames
    let context: NIOSSLContext
  }

  private struct Cached {
    let loaded: Loaded
    var lastUse: UInt64
    let modified: [timespec]
  }

  let directory: String
  let capacity: Int
  let negativeTTL: TimeAmount
  /// Protocol versions, ciphers and ALPN, as for the configured certificates.
  private let profile: TLSProfile
  private let pool: NIOThreadPool
  private let lock = NIOLock()
  private var available: Set<String> = []
  private var directoryModified = timespec()
  private var cache: [String: Cached] = [:]
  private var negative: [String: NIODeadline] = [:]
  private var tick: UInt64 = 0
  /// Counters for `/metrics` (read under the lock).
  private(set) var hits = 0
  private(set) var loads = 0
  private(set) var failures = 0

  init(directory: String, profile: TLSProfile, capacity: Int = 10_000, negativeTTL: TimeAmount = .seconds(30)) {
    self.directory = directory
    self.profile = profile
    self.capacity = max(1, capacity)
    self.negativeTTL = negativeTTL
    self.pool = NIOThreadPool(numberOfThreads: 2)
    pool.start()
    rescan()
  }

  deinit { try? pool.syncShutdownGracefully() }

  /// Domains with both files, as of the last scan.
  var domainCount: Int { lock.withLock { available.count } }
  var cachedCount: Int { lock.withLock { cache.count } }
  var stats: (domains: Int, cached: Int, hits: Int, loads: Int, failures: Int) {
    lock.withLock { (available.count, cache.count, hits, loads, failures) }
  }

  /// The context for a normalised server name, or nil when the directory has none for it.
  /// Completes at once on a cache hit or a known miss; otherwise after loading on the pool.
  func lookup(_ name: String, on loop: EventLoop) -> EventLoopFuture<Loaded?> {
    enum Plan { case hit(Loaded), miss, load }
    let plan: Plan = lock.withLock {
      tick &+= 1
      if var c = cache[name] {
        c.lastUse = tick
        cache[name] = c
        hits += 1
        return .hit(c.loaded)
      }
      if let until = negative[name] {
        if until > .now() { return .miss }
        negative[name] = nil
      }
      return available.contains(name) ? .load : .miss
    }
    switch plan {
    case .hit(let loaded): return loop.makeSucceededFuture(loaded)
    case .miss: return loop.makeSucceededFuture(nil)
    case .load:
      return pool.runIfActive(eventLoop: loop) { [self] in load(name) }.recover { _ in nil }
    }
  }

  private func paths(_ name: String) -> (cert: String, key: String) {
    ("\(directory)/\(name).pem", "\(directory)/\(name).key")
  }

  /// Reads and parses one domain's files (on the pool) and caches the context.
  private func load(_ name: String) -> Loaded? {
    let (certPath, keyPath) = paths(name)
    let modified = [Self.mtime(certPath), Self.mtime(keyPath)]
    do {
      let chain = try NIOSSLCertificate.fromPEMFile(certPath)
      guard !chain.isEmpty else { throw CertificateLoadError.empty }
      let key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
      let context = try NIOSSLContext(configuration: profile.serverConfiguration(chain: chain, key: key))
      let names = CertificateNames(names: try CertificateSet.names(ofLeafIn: certPath))
      // A file named for a domain its certificate does not cover would fail every client: refuse it.
      guard names.covers(name) else { throw CertificateLoadError.nameMismatch }
      let loaded = Loaded(names: names, context: context)
      lock.withLock {
        loads += 1
        tick &+= 1
        if cache.count >= capacity { evictOne() }
        cache[name] = Cached(loaded: loaded, lastUse: tick, modified: modified)
      }
      return loaded
    } catch {
      lock.withLock {
        failures += 1
        remember(miss: name)
      }
      return nil
    }
  }

  /// Evicts the least recently used of a sample of entries (called under the lock).
  private func evictOne() {
    var victim: String?
    var oldest = UInt64.max
    for _ in 0..<8 {
      guard let (k, v) = cache.randomElement() else { return }
      if v.lastUse < oldest {
        oldest = v.lastUse
        victim = k
      }
    }
    if let victim { cache[victim] = nil }
  }

  /// Called under the lock; the negative cache is bounded like the positive one.
  private func remember(miss name: String) {
    if negative.count >= capacity {
      let now = NIODeadline.now()
      negative = negative.filter { $0.value > now }
      if negative.count >= capacity { negative.removeAll(keepingCapacity: true) }
    }
    negative[name] = .now() + negativeTTL
  }

  /// A domain's files were just written (an ACME order): serve them from the next handshake,
  /// without waiting for a rescan.
  func installed(_ name: String) {
    lock.withLock {
      available.insert(name)
      cache[name] = nil
      negative[name] = nil
    }
  }

  /// Re-lists the directory when it changed, and drops cached contexts whose files changed.
  func rescan() {
    let dirModified = Self.mtime(directory)
    let relist = lock.withLock { !Self.same(dirModified, directoryModified) }
    var names: Set<String>? = nil
    if relist, let files = try? FileManager.default.contentsOfDirectory(atPath: directory) {
      var pems = Set<String>()
      var keys = Set<String>()
      for f in files {
        if f.hasSuffix(".pem") { pems.insert(String(f.dropLast(4))) } else if f.hasSuffix(".key") { keys.insert(String(f.dropLast(4))) }
      }
      // Only names that are valid, normalised host names: a file name is never trusted as a path.
      names = pems.intersection(keys).filter { HostName.normalize($0) == $0 }
    }
    let cached = lock.withLock { cache.map { ($0.key, $0.value.modified) } }
    var stale: [String] = []
    for (name, modified) in cached {
      let (c, k) = paths(name)
      if !Self.same(Self.mtime(c), modified[0]) || !Self.same(Self.mtime(k), modified[1]) { stale.append(name) }
    }
    lock.withLock {
      if let names {
        available = names
        directoryModified = dirModified
        negative.removeAll(keepingCapacity: true)
      }
      for name in stale { cache[name] = nil }
    }
  }

  static func mtime(_ path: String) -> timespec {
    var st = stat()
    guard stat(path, &st) == 0 else { return timespec() }
    return st.st_mtim
  }

  static func same(_ a: timespec, _ b: timespec) -> Bool { a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec }

  func shutdown() { try? pool.syncShutdownGracefully() }
}

enum CertificateLoadError: Error {
  case empty
  case nameMismatch
}
