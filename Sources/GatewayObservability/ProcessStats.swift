import Foundation

/// The standard Prometheus `process_*` metrics, read from `/proc/self` when `/metrics` is scraped.
public struct ProcessStats: Sendable {
  public var residentMemoryBytes: Int = 0
  public var virtualMemoryBytes: Int = 0
  public var cpuSeconds: Double = 0
  public var openFDs: Int = 0
  public var maxFDs: Int = 0
  public var startTimeSeconds: Double = BuildInfo.processStart

  static func now() -> Double { Date().timeIntervalSince1970 }

  /// Reads `/proc/self/stat` (CPU ticks, RSS pages, VM bytes), `/proc/self/fd` and `RLIMIT_NOFILE`.
  public static func read() -> ProcessStats {
    var s = ProcessStats()
    if let text = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
      let close = text.lastIndex(of: ")")
    {
      // Fields after the command name: state is field 3; utime 14, stime 15, vsize 23, rss 24.
      let fields = text[text.index(after: close)...].split(separator: " ")
      func field(_ n: Int) -> Double { n - 3 < fields.count ? Double(fields[n - 3]) ?? 0 : 0 }
      let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
      s.cpuSeconds = (field(14) + field(15)) / max(1, ticks)
      s.virtualMemoryBytes = Int(field(23))
      s.residentMemoryBytes = Int(field(24)) * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
    s.openFDs = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.count ?? 1) - 1
    var limit = rlimit()
    if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 { s.maxFDs = Int(limit.rlim_cur) }
    return s
  }
}
