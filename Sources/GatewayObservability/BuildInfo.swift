/// The gateway's version, as `--version`, the start log and `tenant_gateway_build_info` report it.
public enum BuildInfo {
  /// Semantic version of this source tree; bumped with each release (docker/k8s tags the image with it).
  public static let version = "1.0.0"
  /// The Swift compiler that built it.
  public static let swiftVersion: String = {
    #if compiler(>=6.3)
      return "6.3"
    #elseif compiler(>=6.2)
      return "6.2"
    #elseif compiler(>=6.1)
      return "6.1"
    #else
      return "6.0"
    #endif
  }()
  /// Seconds since 1970 at process start (`process_start_time_seconds`).
  public static let processStart: Double = ProcessStats.now()
}
