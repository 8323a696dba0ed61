import ArgumentParser
import Foundation
import GatewayConfig
import GatewayCore
import GatewayObservability
import GatewaySnapshot

struct SnapshotCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "snapshot", abstract: "Snapshot tools.", subcommands: [Diff.self, Stats.self, Compact.self])

  /// `snapshot compact`: fold the journal into the snapshot file (streamed, atomic, crash-safe).
  struct Compact: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Fold the change journal into snapshot.path (streamed, bounded memory, atomic rename) and leave an empty journal.")
    @OptionGroup var options: ConfigOptions
    @Option(help: .hidden) var stopAfter: String?

    func run() throws {
      let config = try loadConfig(options)
      guard let path = config.snapshot.path, let journalPath = config.snapshot.journalPath else {
        throw CommandFailure("snapshot compact needs a file source (snapshot.path)")
      }
      let step = stopAfter.flatMap(SnapshotCompactor.Step.init(rawValue:))
      let outcome: SnapshotCompactor.Outcome
      do {
        outcome = try SnapshotCompactor.compact(snapshotPath: path, journal: ChangeJournal(path: journalPath), stopAfter: step)
      } catch {
        throw CommandFailure("compaction failed, nothing changed: \(error)")
      }
      let rss = ProcessStats.read().residentMemoryBytes >> 20
      print("compacted: version \(outcome.version), \(outcome.folded) change sets folded, \(outcome.kept) kept, \(String(format: "%.2f", outcome.seconds)) s, \(rss) MB RSS")
    }
  }

  /// `snapshot stats`: load a snapshot and report time and memory (scripts/bench-snapshot.sh uses it).
  struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Load a snapshot, time each phase and report memory (JSON on stdout).")

    @Argument(help: "Snapshot file.") var file: String
    @Option(help: "Platform domain (for the validation rules that need it).") var domain: String = "platform.test"
    @Option(name: .customLong("api-host"), help: "API host.") var apiHosts: [String] = ["api.platform.test"]
    @Option(help: "Parser: stream (the gateway's), serialization (Foundation JSONSerialization), decoder (Foundation JSONDecoder).")
    var parser: String = "stream"
    @Option(help: "After the first load, load and publish this many more times (peak memory of reloads).")
    var reloads: Int = 0

    func run() throws {
      let platform = PlatformHosts(apiHosts: apiHosts, dashboardHosts: [], domain: domain)
      let rssBefore = ProcessMemory.current
      let t0 = Date()
      var out: [String: Any] = ["parser": parser, "rss_before_bytes": rssBefore.rss]
      switch parser {
      case "stream":
        let store = SnapshotStore()
        let table: TenantTable
        do { table = try SnapshotStreamParser.parse(path: file, platform: platform) } catch {
          printError("\(error)")
          throw ExitCode(1)
        }
        let loaded = Date()
        store.publish(table, source: "file:\(file)")
        let swapped = Date()
        let entries = table.hostCount + table.keyCount
        let afterFirst = ProcessMemory.current
        out["load_s"] = loaded.timeIntervalSince(t0)
        out["swap_us"] = swapped.timeIntervalSince(loaded) * 1e6
        out["shops"] = table.shopCount
        out["hosts"] = table.hostCount
        out["keys"] = table.keyCount
        out["entries"] = entries
        out["table_bytes"] = table.byteSize
        out["table_bytes_per_entry"] = Double(table.byteSize) / Double(max(1, entries))
        out["rss_bytes"] = afterFirst.rss
        out["rss_bytes_per_entry"] = Double(afterFirst.rss - rssBefore.rss) / Double(max(1, entries))
        out["peak_rss_first_load_bytes"] = afterFirst.peak
        var reloadTimes: [Double] = []
        for _ in 0..<reloads {
          let r0 = Date()
          let next = try SnapshotStreamParser.parse(path: file, platform: platform)
          store.publish(next, source: "file:\(file)")
          reloadTimes.append(Date().timeIntervalSince(r0))
        }
        if reloads > 0 {
          let after = ProcessMemory.current
          out["reload_s"] = reloadTimes
          out["peak_rss_with_reloads_bytes"] = after.peak
          out["rss_after_reloads_bytes"] = after.rss
        }
      case "serialization":
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        let obj = try JSONSerialization.jsonObject(with: data)
        out["load_s"] = Date().timeIntervalSince(t0)
        out["shops"] = ((obj as? [String: Any])?["shops"] as? [Any])?.count ?? 0
        out["peak_rss_first_load_bytes"] = ProcessMemory.current.peak
      case "decoder":
        struct Doc: Decodable {
          struct Shop: Decodable {
            var id: String
            var subdomain: String
            var customDomains: [String]?
            var headlessMode: Bool?
            var allowedOrigins: [String]?
            var status: String?
          }
          struct Key: Decodable {
            var id: String
            var shopId: String
            var sha256: String
            var kind: String
            var mode: String
            var revoked: Bool?
          }
          var version: String
          var shops: [Shop]
          var apiKeys: [Key]
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        let doc = try JSONDecoder().decode(Doc.self, from: data)
        out["load_s"] = Date().timeIntervalSince(t0)
        out["shops"] = doc.shops.count
        out["note"] = "decode only: no validation, no table"
        out["peak_rss_first_load_bytes"] = ProcessMemory.current.peak
      default:
        throw ValidationError("--parser must be stream, serialization or decoder")
      }
      let json = try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys])
      print(String(decoding: json, as: UTF8.self))
    }
  }

  /// `snapshot diff OLD NEW`: what an edit changes, for review before it ships.
  struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Show shops, domains and keys added, removed or changed between two snapshots.")

    @Argument(help: "The current snapshot.") var old: String
    @Argument(help: "The proposed snapshot.") var new: String
    @Option(help: "Print JSON instead of text.") var format: String = "text"

    func run() throws {
      let a = try SnapshotDocument.read(old)
      let b = try SnapshotDocument.read(new)
      let diff = SnapshotDiff(old: a, new: b)
      if format == "json" {
        print(diff.json)
      } else {
        print(diff.text, terminator: "")
      }
      if !diff.isEmpty { throw ExitCode(3) }  // like diff(1): 0 = same
    }
  }
}

/// Resident and peak memory of this process (Linux /proc).
enum ProcessMemory {
  struct Reading {
    var rss: Int
    var peak: Int
  }
  static var current: Reading {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return Reading(rss: 0, peak: 0) }
    func kb(_ field: String) -> Int {
      guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field) }) else { return 0 }
      return (Int(line.split(separator: " ").dropFirst().first(where: { Int($0) != nil }) ?? "0") ?? 0) * 1024
    }
    return Reading(rss: kb("VmRSS:"), peak: kb("VmHWM:"))
  }
}
