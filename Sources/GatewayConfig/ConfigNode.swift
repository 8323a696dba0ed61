import Yams

/// The YAML document as a plain tree, so environment and `--set` overrides can be applied before
/// decoding (PRODUCT.md §7). Mapping order is kept; it matters for `routes`.
public indirect enum ConfigNode: Sendable, Equatable {
  case scalar(String)
  case mapping([(String, ConfigNode)])
  case sequence([ConfigNode])
  case null

  public static func == (a: ConfigNode, b: ConfigNode) -> Bool {
    switch (a, b) {
    case (.scalar(let x), .scalar(let y)): return x == y
    case (.sequence(let x), .sequence(let y)): return x == y
    case (.null, .null): return true
    case (.mapping(let x), .mapping(let y)):
      return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    default: return false
    }
  }

  /// Parses YAML text.
  public static func parse(yaml: String) throws -> ConfigNode {
    try parseWithLines(yaml: yaml).node
  }

  /// Parses YAML text, noting the line of every key path (`tls.certificates[0].cert` → 12), so a
  /// message about a value can point at where it was written.
  public static func parseWithLines(yaml: String) throws -> (node: ConfigNode, lines: [String: Int]) {
    guard let node = try Yams.compose(yaml: yaml) else { return (.mapping([]), [:]) }
    var lines: [String: Int] = [:]
    return (try convert(node, path: "", lines: &lines), lines)
  }

  static func convert(_ node: Yams.Node, path: String, lines: inout [String: Int]) throws -> ConfigNode {
    if let line = node.mark?.line, lines[path] == nil { lines[path] = line }
    switch node {
    case .scalar(let s):
      if s.style == .plain, ["null", "~", "Null", "NULL", ""].contains(s.string) { return .null }
      return .scalar(s.string)
    case .mapping(let m):
      var out: [(String, ConfigNode)] = []
      var seen = Set<String>()
      for (k, v) in m {
        let line = k.mark?.line
        guard let key = k.string else { throw ConfigError(path: path, reason: "mapping keys must be strings", line: line) }
        let keyPath = path.isEmpty ? key : "\(path).\(key)"
        guard seen.insert(key).inserted else { throw ConfigError(path: keyPath, reason: "key appears twice", line: line) }
        if let line { lines[keyPath] = line }
        out.append((key, try convert(v, path: keyPath, lines: &lines)))
      }
      return .mapping(out)
    case .sequence(let s):
      return .sequence(try s.enumerated().map { try convert($1, path: "\(path)[\($0)]", lines: &lines) })
    case .alias:
      throw ConfigError(path: path, reason: "YAML aliases are not supported", line: node.mark?.line)
    }
  }

  subscript(key: String) -> ConfigNode? {
    guard case .mapping(let pairs) = self else { return nil }
    return pairs.first { $0.0 == key }?.1
  }

  /// Sets the scalar at a dotted path, creating mappings on the way.
  public mutating func set(path: [String], value: ConfigNode) throws {
    guard let head = path.first else {
      self = value
      return
    }
    var pairs: [(String, ConfigNode)]
    switch self {
    case .mapping(let p): pairs = p
    case .null: pairs = []
    default: throw ConfigError(path: head, reason: "cannot set a key inside a non-mapping value")
    }
    if let i = pairs.firstIndex(where: { $0.0 == head }) {
      try pairs[i].1.set(path: Array(path.dropFirst()), value: value)
    } else {
      var child = ConfigNode.null
      try child.set(path: Array(path.dropFirst()), value: value)
      pairs.append((head, child))
    }
    self = .mapping(pairs)
  }
}

/// A configuration problem, with the key path it is about.
public struct ConfigError: Error, Sendable, CustomStringConvertible, Equatable {
  /// Dotted key path, e.g. `tls.certificates[0].cert`.
  public var path: String
  public var reason: String
  /// The YAML line the value was written on, when it came from the file.
  public var line: Int?
  /// Where the value came from when not the file: `environment TGW_LISTEN_ADDRESS`, `--set listen.address=…`.
  public var source: String?
  public init(path: String, reason: String, line: Int? = nil, source: String? = nil) {
    self.path = path
    self.reason = reason
    self.line = line
    self.source = source
  }
  public var description: String { path.isEmpty ? reason : "\(path): \(reason)" }

  /// The message as `check` and `serve` print it: `gateway.conf:12: listen.address: …`, or, for a
  /// value from an override, `environment TGW_LISTEN_ADDRESS: listen.address: …`.
  public func message(file: String) -> String {
    if let source { return "\(source): \(description)" }
    if let line { return "\(file):\(line): \(description)" }
    return "\(file): \(description)"
  }
}

/// Walks one mapping of the tree, reading typed values and noting which keys were used, so unknown
/// keys can be reported (an error in `check`, a warning in `serve`).
final class ConfigCursor {
  let node: ConfigNode
  let path: String
  let diagnostics: Diagnostics
  private var used = Set<String>()

  final class Diagnostics {
    var errors: [ConfigError] = []
    /// Key paths present but never read, with a "did you mean" hint (or "").
    var unknownKeys: [(path: String, hint: String)] = []
  }

  init(node: ConfigNode, path: String, diagnostics: Diagnostics) {
    self.node = node
    self.path = path
    self.diagnostics = diagnostics
    if case .mapping = node {
    } else if case .null = node {
    } else {
      diagnostics.errors.append(ConfigError(path: path, reason: "must be a mapping"))
    }
  }

  func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

  func fail(_ key: String, _ reason: String) {
    diagnostics.errors.append(ConfigError(path: keyPath(key), reason: reason))
  }

  func has(_ key: String) -> Bool {
    if case .null? = node[key] { return false }
    return node[key] != nil
  }

  private func raw(_ key: String) -> ConfigNode? {
    used.insert(key)
    let v = node[key]
    if case .null? = v { return nil }
    return v
  }

  func string(_ key: String) -> String? {
    guard let v = raw(key) else { return nil }
    guard case .scalar(let s) = v else {
      fail(key, "must be a string")
      return nil
    }
    return s
  }

  func string(_ key: String, default d: String) -> String { string(key) ?? d }

  func int(_ key: String, default d: Int, range: ClosedRange<Int> = 0...Int.max) -> Int {
    guard let s = string(key) else { return d }
    guard let v = Int(s) else {
      fail(key, "must be an integer, got \"\(s)\"")
      return d
    }
    guard range.contains(v) else {
      fail(key, "must be between \(range.lowerBound) and \(range.upperBound), got \(v)")
      return d
    }
    return v
  }

  func double(_ key: String, default d: Double, range: ClosedRange<Double>) -> Double {
    guard let s = string(key) else { return d }
    guard let v = Double(s), range.contains(v) else {
      fail(key, "must be a number between \(range.lowerBound) and \(range.upperBound), got \"\(s)\"")
      return d
    }
    return v
  }

  func bool(_ key: String, default d: Bool) -> Bool {
    guard let s = string(key) else { return d }
    switch s {
    case "true", "True", "TRUE": return true
    case "false", "False", "FALSE": return false
    default:
      fail(key, "must be true or false, got \"\(s)\"")
      return d
    }
  }

  func strings(_ key: String) -> [String]? {
    guard let v = raw(key) else { return nil }
    guard case .sequence(let items) = v else {
      fail(key, "must be a list of strings")
      return nil
    }
    var out: [String] = []
    for (i, item) in items.enumerated() {
      guard case .scalar(let s) = item else {
        diagnostics.errors.append(ConfigError(path: "\(keyPath(key))[\(i)]", reason: "must be a string"))
        continue
      }
      out.append(s)
    }
    return out
  }

  func child(_ key: String) -> ConfigCursor? {
    guard let v = raw(key) else { return nil }
    return ConfigCursor(node: v, path: keyPath(key), diagnostics: diagnostics)
  }

  /// The raw node under `key` (for values that may be a scalar or a mapping).
  func node(_ key: String) -> ConfigNode? { raw(key) }

  func items(_ key: String) -> [ConfigCursor]? {
    guard let v = raw(key) else { return nil }
    guard case .sequence(let items) = v else {
      fail(key, "must be a list")
      return nil
    }
    return items.enumerated().map {
      ConfigCursor(node: $1, path: "\(keyPath(key))[\($0)]", diagnostics: diagnostics)
    }
  }

  /// Keys present but never read.
  var keys: [String] {
    guard case .mapping(let pairs) = node else { return [] }
    return pairs.map(\.0)
  }

  func finish() {
    for key in keys where !used.contains(key) {
      let hint = Spelling.closest(to: key, among: used).map { " (did you mean \(keyPath($0))?)" } ?? ""
      diagnostics.unknownKeys.append((keyPath(key), hint))
    }
  }
}

/// "Did you mean": the closest known name within a small edit distance.
public enum Spelling {
  /// The candidate nearest to `word` (Levenshtein, case-insensitive) when at most a third of it differs.
  public static func closest<S: Sequence>(to word: String, among candidates: S) -> String? where S.Element == String {
    let w = Array(word.lowercased().utf8)
    var best: (String, Int)? = nil
    for c in candidates {
      let d = distance(w, Array(c.lowercased().utf8))
      if d <= max(2, w.count / 3), d < (best?.1 ?? .max) { best = (c, d) }
    }
    return best?.0
  }

  static func distance(_ a: [UInt8], _ b: [UInt8]) -> Int {
    if a.isEmpty { return b.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
      var current = [i] + [Int](repeating: 0, count: b.count)
      for j in stride(from: 1, through: b.count, by: 1) {
        current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
      }
      previous = current
    }
    return previous[b.count]
  }
}
