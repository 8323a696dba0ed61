import ArgumentParser
import GatewayObservability

/// `tenant-gateway`: the multi-tenant edge proxy and its ops commands.
@main
struct TenantGatewayCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "tenant-gateway",
    abstract: "Multi-tenant TLS edge proxy: resolves the shop of every request and forwards it with a signed X-Tenant header.",
    version: BuildInfo.version,
    subcommands: [
      Serve.self, Check.self, Lookup.self, Apply.self, Domains.self, Keys.self, Shops.self, SnapshotCommand.self, Certs.self,
      DemoUpstream.self,
    ])
}

/// Options shared by commands that read `gateway.conf`.
struct ConfigOptions: ParsableArguments {
  @Option(name: .long, help: "Path to gateway.conf.")
  var config: String = "gateway.conf"

  @Option(name: .customLong("set"), help: ArgumentHelp("Override a scalar key: key.path=value (repeatable; wins over TGW_* environment variables).", valueName: "key.path=value"))
  var overrides: [String] = []
}
