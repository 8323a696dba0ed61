import Foundation
import GatewayACME
import Logging
import NIOCore
import PostgresNIO

/// ACME's fleet storage in PostgreSQL (PRODUCT.md §10 "A fleet"): with the PostgreSQL source, a
/// Kubernetes Deployment needs no shared volume. The tables are in `sql/tenant-gateway.sql`:
///
/// - `<schema>.certificates`: one row per domain (chain, key, `not_after`, issuer);
/// - `<schema>.acme_accounts`: the fleet's one account key per directory URL;
/// - `<schema>.acme_challenges`: pending challenges, so any member answers the CA's validation.
///
/// The order lock is a session-level advisory lock per domain (`pg_try_advisory_lock` on a hash of
/// the domain), so the server releases it when the holder's session ends — a crashed gateway
/// never blocks a domain. One connection, its own, opened on first use and again after a failure
/// (the locks of a lost session are gone with it; at worst a domain is ordered twice, never not
/// at all).
public actor PostgresCertificateStore: ACMEFleetStore {
  let settings: PostgresSource.Settings
  let group: EventLoopGroup
  let logger: Logger
  private var connection: PostgresConnection?
  /// Counts connections, so a lock knows whether its session is still the current one.
  private var generation = 0

  public init(settings: PostgresSource.Settings, group: EventLoopGroup, logger: Logger) {
    self.settings = settings
    self.group = group
    self.logger = logger
  }

  public nonisolated var description: String { "postgres \(settings.displayName) \(settings.schema).certificates" }

  var schema: String { "\"\(settings.schema)\"" }

  private func conn() async throws -> PostgresConnection {
    if let c = connection, !c.isClosed { return c }
    if let old = connection { await PostgresSource.close(old) }
    connection = nil
    var quiet = logger
    quiet.logLevel = .error
    generation += 1
    let c = try await PostgresConnection.connect(
      on: group.next(), configuration: PostgresSource.configuration(settings), id: 10_000 + generation, logger: quiet)
    connection = c
    return c
  }

  /// Runs `body` on the connection; a failure drops the connection, so the next call reconnects.
  private func with<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
    let c = try await conn()
    do {
      return try await body(c)
    } catch {
      if c.isClosed { connection = nil }
      throw PostgresSource.Failure(description: PostgresSource.describe(error))
    }
  }

  private func query(_ sql: String, _ values: [String]) -> PostgresQuery {
    var binds = PostgresBindings()
    for v in values { binds.append(v) }
    return PostgresQuery(unsafeSQL: sql, binds: binds)
  }

  // MARK: the lock

  struct Lock: ACMEFleetLock {
    let store: PostgresCertificateStore
    let domain: String
    let generation: Int
    func release() async { await store.unlock(domain, generation: generation) }
  }

  /// The advisory lock key: the schema's namespace and the domain, hashed to 64 bits by the server.
  private func lockKey(_ domain: String) -> String { "tenant_gateway.acme:\(settings.schema):\(domain)" }

  public func tryLock(domain: String) async throws -> ACMEFleetLock? {
    try await with { c in
      let rows = try await c.query(query("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", [lockKey(domain)]), logger: logger)
      for try await got in rows.decode(Bool.self) where got {
        return Lock(store: self, domain: domain, generation: generation)
      }
      return nil
    }
  }

  func unlock(_ domain: String, generation: Int) async {
    // A lock taken on an earlier session ended with it.
    guard generation == self.generation, let c = connection, !c.isClosed else { return }
    _ = try? await c.query(query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [lockKey(domain)]), logger: logger).collect()
  }

  // MARK: certificates

  public func certificate(domain: String) async throws -> IssuedCertificate? {
    try await with { c in
      let rows = try await c.query(query("SELECT chain_pem, key_pem FROM \(schema).certificates WHERE domain = $1", [domain]), logger: logger)
      for try await (chain, key) in rows.decode((String, String).self) {
        return IssuedCertificate(domain: domain, chainPEM: chain, keyPEM: key)
      }
      return nil
    }
  }

  public func allCertificates() async throws -> [IssuedCertificate] {
    try await with { c in
      var out: [IssuedCertificate] = []
      let rows = try await c.query(PostgresQuery(unsafeSQL: "SELECT domain, chain_pem, key_pem FROM \(schema).certificates"), logger: logger)
      for try await (domain, chain, key) in rows.decode((String, String, String).self) {
        out.append(IssuedCertificate(domain: domain, chainPEM: chain, keyPEM: key))
      }
      return out
    }
  }

  public func save(_ certificate: IssuedCertificate, notAfter: Date, issuer: String) async throws {
    try await with { c in
      var binds = PostgresBindings()
      binds.append(certificate.domain)
      binds.append(certificate.chainPEM)
      binds.append(certificate.keyPEM)
      binds.append(notAfter)
      binds.append(issuer)
      // Never backwards: a slower member's older certificate does not replace a newer one.
      let sql = """
        INSERT INTO \(schema).certificates (domain, chain_pem, key_pem, not_after, issuer, updated_at)
        VALUES ($1, $2, $3, $4, $5, now())
        ON CONFLICT (domain) DO UPDATE SET chain_pem = EXCLUDED.chain_pem, key_pem = EXCLUDED.key_pem,
          not_after = EXCLUDED.not_after, issuer = EXCLUDED.issuer, updated_at = now()
        WHERE \(schema).certificates.not_after <= EXCLUDED.not_after
        """
      _ = try await c.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger).collect()
    }
  }

  public func accountKey(directoryURL: String, proposed: String) async throws -> String {
    try await with { c in
      _ = try await c.query(
        query("INSERT INTO \(schema).acme_accounts (directory_url, key_pem) VALUES ($1, $2) ON CONFLICT (directory_url) DO NOTHING", [directoryURL, proposed]),
        logger: logger
      ).collect()
      let rows = try await c.query(query("SELECT key_pem FROM \(schema).acme_accounts WHERE directory_url = $1", [directoryURL]), logger: logger)
      for try await key in rows.decode(String.self) { return key }
      throw PostgresSource.Failure(description: "no account row for \(directoryURL) after inserting one")
    }
  }

  // MARK: challenges (ChallengeMirror)

  public func publish(name: String, domain: String, keyAuthorization: String) async throws {
    try await with { c in
      let sql = """
        INSERT INTO \(schema).acme_challenges (name, domain, key_authorization, created_at) VALUES ($1, $2, $3, now())
        ON CONFLICT (name) DO UPDATE SET domain = EXCLUDED.domain, key_authorization = EXCLUDED.key_authorization, created_at = now()
        """
      _ = try await c.query(query(sql, [name, domain, keyAuthorization]), logger: logger).collect()
    }
  }

  public func withdraw(name: String) async {
    _ = try? await with { c in
      try await c.query(query("DELETE FROM \(schema).acme_challenges WHERE name = $1", [name]), logger: logger).collect()
    }
  }

  public func read(name: String) async -> (domain: String, keyAuthorization: String)? {
    try? await with { c in
      // An hour old is a crashed holder's leftover, never an order still waiting.
      let sql = "SELECT domain, key_authorization FROM \(schema).acme_challenges WHERE name = $1 AND created_at > now() - interval '1 hour'"
      for try await (domain, keyAuthorization) in try await c.query(query(sql, [name]), logger: logger).decode((String, String).self) {
        return (domain, keyAuthorization)
      }
      return nil
    }
  }

  /// Closes the connection (at shutdown).
  public func close() async {
    if let c = connection { await PostgresSource.close(c) }
    connection = nil
  }
}
