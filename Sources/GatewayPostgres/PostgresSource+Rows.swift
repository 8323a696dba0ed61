import Dispatch
import Foundation
import GatewayCore
import GatewaySnapshot
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO

/// Reading the views: the consistent read of both at start or resync, and rows turned into table
/// inputs (or a refusal naming the rule the row broke).
extension PostgresSource {
  /// What one consistent read of both views gives.
  public struct FullRead: Sendable {
    public var table: TenantTable
    public var refusals: [TenantTableBuilder.Refusal]
    public var seq: Int64
    public var seconds: Double
  }

  /// One `REPEATABLE READ` transaction: the outbox's highest seq and both views, streamed.
  func readAll(_ conn: PostgresConnection) async throws -> FullRead {
    let started = Date()
    try await conn.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
    do {
      var seq: Int64 = 0
      for try await s in try await conn.query(
        PostgresQuery(unsafeSQL: "SELECT COALESCE(MAX(seq), 0)::int8 FROM \(schema).changes"), logger: logger
      ).decode(Int64.self) {
        seq = s
      }
      var builder = TenantTableBuilder(version: "pg:\(seq)", platform: platform, tolerant: true)
      var extra: [TenantTableBuilder.Refusal] = []
      for try await row in try await conn.query(PostgresQuery(unsafeSQL: Self.shopSelect(schema, where: "")), logger: logger) {
        switch Self.shop(row) {
        case .success(let s): builder.addShop(s)
        case .failure(let r): extra.append(r)
        }
      }
      for try await row in try await conn.query(PostgresQuery(unsafeSQL: Self.keySelect(schema, where: "")), logger: logger) {
        switch Self.key(row) {
        case .success(let k): builder.addKey(k)
        case .failure(let r): extra.append(r)
        }
      }
      try await conn.query("COMMIT", logger: logger)
      let table = try builder.finish()
      return FullRead(table: table, refusals: extra + builder.refusals, seq: seq, seconds: Date().timeIntervalSince(started))
    } catch {
      _ = try? await conn.query("ROLLBACK", logger: logger)
      throw error
    }
  }

  static func shopSelect(_ schema: String, where clause: String) -> String {
    "SELECT id::text, subdomain::text, custom_domains::text[], headless_mode, allowed_origins::text[], status::text, "
      + "rate_limit_rps::int8, rate_limit_burst::int8 FROM \(schema).shops \(clause)"
  }

  static func keySelect(_ schema: String, where clause: String) -> String {
    "SELECT id::text, shop_id::text, sha256::text, kind::text, mode::text, revoked FROM \(schema).api_keys \(clause)"
  }

  /// A shop row as a snapshot record, or why it cannot be one (NULLs where the view promises values).
  static func shop(_ row: PostgresRow) -> Result<ShopInput, TenantTableBuilder.Refusal> {
    do {
      let (id, sub, domains, headless, origins, status, rps, burst) = try row.decode(
        (String?, String?, [String]?, Bool?, [String]?, String?, Int64?, Int64?).self)
      guard let id else { return .failure(.init(entity: .shop, id: "?", reasons: ["invalid_field: a shops row has a NULL id"])) }
      guard let sub else { return .failure(.init(entity: .shop, id: id, reasons: ["invalid_field: subdomain is NULL"])) }
      var rate: RateLimitOverride? = nil
      if let rps {
        guard rps >= 0, rps <= 1_000_000_000, (burst ?? rps) >= 0, (burst ?? rps) <= 1_000_000_000 else {
          return .failure(.init(entity: .shop, id: id, reasons: ["invalid_rate_limit: rate_limit_rps/burst out of range"]))
        }
        rate = RateLimitOverride(rps: UInt32(rps), burst: UInt32(burst ?? rps))
      }
      return .success(ShopInput(
        id: id, subdomain: sub, customDomains: domains ?? [], headlessMode: headless ?? false, allowedOrigins: origins ?? [],
        status: status ?? "active", rateLimit: rate))
    } catch {
      return .failure(.init(entity: .shop, id: "?", reasons: ["invalid_field: \(error)"]))
    }
  }

  static func key(_ row: PostgresRow) -> Result<KeyInput, TenantTableBuilder.Refusal> {
    do {
      let (id, shop, sha, kind, mode, revoked) = try row.decode((String?, String?, String?, String?, String?, Bool?).self)
      guard let id, let shop, let sha, let kind, let mode else {
        return .failure(.init(entity: .apiKey, id: id ?? "?", reasons: ["invalid_field: an api_keys row has NULL fields"]))
      }
      return .success(KeyInput(id: id, shopID: shop, sha256: sha.lowercased(), kind: kind, mode: mode, revoked: revoked ?? false))
    } catch {
      return .failure(.init(entity: .apiKey, id: "?", reasons: ["invalid_field: \(error)"]))
    }
  }
}
