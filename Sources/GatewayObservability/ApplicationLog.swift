import Foundation
import GatewayCore
import Logging

/// The application log (not the access log): text lines by default, or one JSON object per line
/// (`serve --log-format json`) for log pipelines that parse. Written to standard error.
public enum ApplicationLog {
  /// Installs the log handler; call once, before the first logger is made.
  public static func bootstrap(format: String) {
    guard format == "json" else { return }
    LoggingSystem.bootstrap { label in JSONLogHandler(label: label) }
  }
}

/// One JSON object per line: `{"time":…,"level":…,"label":…,"message":…, metadata…}`.
public struct JSONLogHandler: LogHandler {
  public var metadata: Logger.Metadata = [:]
  public var logLevel: Logger.Level = .info
  let label: String

  public init(label: String) { self.label = label }

  public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  public func log(event: LogEvent) {
    var line = "{\"time\":"
    JSONText.appendQuoted(Self.timestamp(), to: &line)
    line += ",\"level\":"
    JSONText.appendQuoted(event.level.rawValue, to: &line)
    line += ",\"label\":"
    JSONText.appendQuoted(label, to: &line)
    line += ",\"message\":"
    JSONText.appendQuoted("\(event.message)", to: &line)
    let merged = metadata.merging(event.metadata ?? [:]) { $1 }
    for (k, v) in merged.sorted(by: { $0.key < $1.key }) where !["time", "level", "label", "message"].contains(k) {
      line += ","
      JSONText.appendQuoted(k, to: &line)
      line += ":"
      JSONText.appendQuoted("\(v)", to: &line)
    }
    line += "}\n"
    FileHandle.standardError.write(Data(line.utf8))
  }

  static func timestamp() -> String {
    var tv = timeval()
    gettimeofday(&tv, nil)
    var tm = tm()
    var t = tv.tv_sec
    gmtime_r(&t, &tm)
    return String(
      format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
      tm.tm_sec, Int(tv.tv_usec / 1000))
  }
}
