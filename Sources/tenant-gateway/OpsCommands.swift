import ArgumentParser
import Foundation
import GatewayConfig
import GatewayCore
import GatewaySnapshot

/// Loads `gateway.conf` for an ops command, or exits with the errors.
func loadConfig(_ options: ConfigOptions) throws -> GatewayConfig {
  let outcome = ConfigLoader.load(path: options.config, overrides: options.overrides)
  guard let config = outcome.config else {
    for e in outcome.errors { printError(e.message(file: options.config)) }
    throw ExitCode(1)
  }
  return config
}

/// `lookup HOST [--key-from-stdin]`: which shop a host (and key) resolve to, and why.
struct Lookup: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Explain how a host (and a key read from stdin) resolve against the configured snapshot.")

  @OptionGroup var options: ConfigOptions
  @Argument(help: "The host, as a client would send it.") var host: String
  @Flag(help: "Read an API key from stdin (it is hashed, never printed).") var keyFromStdin = false
  @Flag(help: "Print JSON.") var json = false

  func run() throws {
    try Self.explain(options: options, host: host, keyFromStdin: keyFromStdin, json: json)
  }

  static func explain(options: ConfigOptions, host: String, keyFromStdin: Bool, json: Bool) throws {
    let config = try loadConfig(options)
    guard config.snapshot.path != nil else { throw CommandFailure("snapshot.path is not set") }
    // The snapshot with its journal: what a gateway started now would serve.
    let table = try OfflineTable(config: config).load()
    var digest: KeyDigest? = nil
    if keyFromStdin {
      var key = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
      while key.hasSuffix("\n") || key.hasSuffix("\r") { key.removeLast() }
      digest = KeyDigest.of(key: key)
    }
    let e = TenantResolver(settings: config.resolverSettings).explain(host: host, keyDigest: digest, in: table)
    if json {
      print(e.json)
      return
    }
    print("host:   \(e.host) (\(e.hostClass))")
    print("rule:   \(e.rule)")
    if let id = e.shopID {
      print("shop:   \(id) subdomain=\(e.shopSubdomain ?? "") status=\(e.shopStatus ?? "") headlessMode=\(e.headlessMode ?? false)")
    }
    if let k = e.keyID { print("key:    \(k) kind=\(e.keyKind ?? "") mode=\(e.keyMode ?? "")") }
    print("result: \(e.problem ?? "resolves")")
    if e.problem != nil { throw ExitCode(1) }
  }
}

/// `domains add|remove|list|lookup`: custom domain edits to the snapshot file.
struct Domains: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Edit a shop's custom domains (each edit one change set: through the running gateway, or to the journal).",
    subcommands: [Add.self, Remove.self, List.self, LookupDomain.self])

  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List a shop's subdomain and custom domains.")
    @OptionGroup var options: ConfigOptions
    @Argument var shop: String
    func run() throws {
      let config = try loadConfig(options)
      let state = try EditTarget.open(config).shop(shop)
      print("\(state.shop.subdomain).\(config.platform.domain)\tsubdomain")
      for d in state.shop.customDomains { print("\(d)\tcustom domain") }
    }
  }

  struct LookupDomain: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "lookup", abstract: "Which shop a host belongs to.")
    @OptionGroup var options: ConfigOptions
    @Argument var host: String
    func run() throws {
      try Lookup.explain(options: options, host: host, keyFromStdin: false, json: false)
    }
  }
}

/// Plain HTTP/1.1 to the gateway's admin listener on loopback (the edit commands).
enum AdminClient {
  static func send(_ request: String, host: String, port: Int) -> String? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = UInt16(port).bigEndian
    guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &addr.sin_addr) == 1 else { return nil }
    var tv = timeval(tv_sec: 30, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    let ok = withUnsafePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard ok == 0 else { return nil }
    _ = request.withCString { Foundation.send(fd, $0, strlen($0), 0) }
    // Read the head, then exactly Content-Length bytes (the listener keeps connections alive).
    var out = [UInt8]()
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
      let n = recv(fd, &buf, buf.count, 0)
      if n <= 0 { break }
      out.append(contentsOf: buf[0..<n])
      let text = String(decoding: out, as: UTF8.self)
      if let headEnd = text.range(of: "\r\n\r\n") {
        let head = text[..<headEnd.lowerBound].lowercased()
        let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
          .flatMap { Int($0.dropFirst(15).trimmingCharacters(in: .whitespaces)) } ?? 0
        if text.utf8.count - text.utf8.distance(from: text.startIndex, to: headEnd.upperBound) >= length { break }
      }
    }
    return String(decoding: out, as: UTF8.self)
  }
}

/// A command that ran and was refused (a mapped domain, an unknown shop, an unreadable file):
/// `Error: <reason>` and exit 1. A `ValidationError` is for arguments of the wrong shape: it prints
/// the usage and exits 64.
struct CommandFailure: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}
