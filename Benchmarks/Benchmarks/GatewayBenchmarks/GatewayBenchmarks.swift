import Benchmark
import Crypto
import Foundation
import GatewayCore
import GatewaySigning
import JWTKit

/// The claims of one X-Tenant, as jwt-kit encodes them (same fields as the gateway's signer).
struct TenantClaims: JWTPayload {
  var iss: IssuerClaim
  var aud: AudienceClaim
  var shop_id: String
  var shop_subdomain: String
  var mode: String
  var auth: String
  var key_id: String
  var host: String
  var iat: IssuedAtClaim
  var exp: ExpirationClaim
  var jti: IDClaim
  var htm: String
  var htu: String
  func verify(using algorithm: some JWTAlgorithm) async throws {}
}

let secret = Array("dev-only-tenant-secret-4f8c2a91d7e3b6050a1c9e8f7d2b4a6c".utf8)

let benchmarks: @Sendable () -> Void = {
  Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput], maxDuration: .seconds(3))

  // The gateway's signer: precomputed header, claims written as bytes, HMAC-SHA256.
  Benchmark("sign X-Tenant: direct HMAC over precomputed header", configuration: .init(scalingFactor: .kilo)) { benchmark in
    var signer = TenantTokenSigner(
      keys: [SigningKey(kid: "dev-1", material: .hs256(SymmetricKey(data: secret)))], issuer: "tenant-gateway", ttlSeconds: 60)
    let now = Int(Date().timeIntervalSince1970)
    benchmark.startMeasurement()
    for i in benchmark.scaledIterations {
      let token = signer.sign(now: now) { c in
        c.add("aud", "default")
        c.add("shop_id", "5b0c6f2e-8a1d-4c3b-9e7f-1a2b3c4d5e01")
        c.add("shop_subdomain", "acme")
        c.add("mode", "live")
        c.add("auth", "secret_key")
        c.add("key_id", "key_acme_live_secret")
        c.add("host", "api.platform.localhost")
        c.add("jti", "3f6279140667843a00000000000000\(i % 10)")
        c.add("htm", "GET")
        c.add("htu", "/v1/admin/products")
      }
      blackHole(token)
    }
  }

  // jwt-kit with the same claims and key.
  Benchmark("sign X-Tenant: jwt-kit 5", configuration: .init(scalingFactor: .kilo)) { benchmark in
    let keys = JWTKeyCollection()
    await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256, kid: "dev-1")
    let now = Date()
    benchmark.startMeasurement()
    for i in benchmark.scaledIterations {
      let claims = TenantClaims(
        iss: "tenant-gateway", aud: "default", shop_id: "5b0c6f2e-8a1d-4c3b-9e7f-1a2b3c4d5e01", shop_subdomain: "acme",
        mode: "live", auth: "secret_key", key_id: "key_acme_live_secret", host: "api.platform.localhost",
        iat: .init(value: now), exp: .init(value: now.addingTimeInterval(60)), jti: .init(value: "3f6279140667843a00000000000000\(i % 10)"),
        htm: "GET", htu: "/v1/admin/products")
      let token = try await keys.sign(claims, kid: "dev-1")
      blackHole(token)
    }
  }

  // Session / customer-token verification (issue 3/8): uncached and cached, HS256 and ES256.
  let now = Int(Date().timeIntervalSince1970)
  let hsKey = SymmetricKey(data: Array("session-secret-session-secret-session-secret!".utf8))
  let esKey = P256.Signing.PrivateKey()
  func mint(_ alg: String, _ kid: String, sign: (ArraySlice<UInt8>) -> [UInt8]) -> String {
    let h = Base64URL.encode(Array("{\"alg\":\"\(alg)\",\"kid\":\"\(kid)\",\"typ\":\"JWT\"}".utf8))
    let p = Base64URL.encode(Array("{\"iss\":\"platform-auth\",\"sub\":\"cust-42\",\"shop_id\":\"5b0c6f2e-8a1d-4c3b-9e7f-1a2b3c4d5e01\",\"iat\":\(now),\"exp\":\(now + 3600)}".utf8))
    let input = Array("\(h).\(p)".utf8)
    return "\(h).\(p).\(Base64URL.encode(sign(input[...])))"
  }
  let hsToken = mint("HS256", "hs") { Array(HMAC<SHA256>.authenticationCode(for: $0, using: hsKey)) }
  let esToken = mint("ES256", "es") { Array(try! esKey.signature(for: $0).rawRepresentation) }
  let verifyKeys = [VerifyKey(kid: "hs", material: .hs256(hsKey)), VerifyKey(kid: "es", material: .es256(esKey.publicKey))]
  for (name, token) in [("HS256", hsToken), ("ES256", esToken)] {
    Benchmark("verify session token \(name): no cache", configuration: .init(scalingFactor: .kilo)) { benchmark in
      let verifier = SessionTokenVerifier(keys: verifyKeys, issuer: "platform-auth")
      benchmark.startMeasurement()
      for _ in benchmark.scaledIterations { blackHole(verifier.verifyUncached(token, now: now)) }
    }
    Benchmark("verify session token \(name): cached", configuration: .init(scalingFactor: .kilo)) { benchmark in
      var verifier = SessionTokenVerifier(keys: verifyKeys, issuer: "platform-auth")
      _ = verifier.verify(token)
      benchmark.startMeasurement()
      for _ in benchmark.scaledIterations { blackHole(verifier.verify(token)) }
    }
  }

  // The per-request decision as the gateway runs it: host normalisation, classification, table
  // lookups, key hash, route and policy, then signing the X-Tenant (issue 6/8 goal: <= 3 us and
  // <= 5 allocations together).
  do {
    var b = TenantTableBuilder(version: "bench", platform: PlatformHosts(apiHosts: ["api.platform.test"], dashboardHosts: [], domain: "platform.test"), seed: 1)
    for i in 0..<100_000 {
      let id = "00000000-0000-4000-8000-" + String(repeating: "0", count: 12 - String(i).count) + String(i)
      b.addShop(ShopInput(id: id, subdomain: "shop\(i)", customDomains: ["shop\(i).merchant.test"], headlessMode: true, allowedOrigins: ["https://shop\(i).merchant.test"]))
      b.addKey(KeyInput(id: "key_\(i)", shopID: id, sha256: KeyDigest.of(key: "sk_live_\(i)").hex, kind: "secret", mode: "live"))
    }
    let flat = try! b.finish()
    let platform = PlatformHosts(apiHosts: ["api.platform.test"], dashboardHosts: [], domain: "platform.test")
    // The same table after 1 000 change sets (issue 3/6): 1 000 shops replaced (each with a second
    // domain) live in the overlay, and every lookup that lands in the base also checks the
    // overlay's hidden set. Resolution must cost the same as on the flat table.
    var withOverlay = flat
    for i in stride(from: 0, to: 100_000, by: 100) {
      let id = "00000000-0000-4000-8000-" + String(repeating: "0", count: 12 - String(i).count) + String(i)
      let change = ChangeSet(version: "bench-\(i)", shops: [ShopInput(id: id, subdomain: "shop\(i)", customDomains: ["shop\(i).merchant.test", "x\(i).example"],
                                                                  headlessMode: true, allowedOrigins: ["https://shop\(i).merchant.test"])],
                             apiKeys: [KeyInput(id: "key_\(i)", shopID: id, sha256: KeyDigest.of(key: "sk_live_\(i)").hex, kind: "secret", mode: "live")])
      withOverlay = try! withOverlay.applying(change, platform: platform)
    }
    let resolver = TenantResolver(settings: ResolverSettings(platform: platform))
    let hostFacts = (0..<1000).map { RequestFacts(host: "SHOP\($0 * 97).platform.test", method: "GET", path: "/products/x") }
    let keyFacts = (0..<1000).map { RequestFacts(host: "api.platform.test", method: "GET", path: "/v1/admin/products", bearer: "sk_live_\($0 * 97)") }
    for (name, facts) in [("subdomain", hostFacts), ("secret key", keyFacts)] {
      Benchmark("resolve + policy (\(name), 1 000 shops in an overlay)", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for i in benchmark.scaledIterations {
          var f = facts[i % facts.count]
          f.host = HostName.normalize(f.host) ?? f.host
          blackHole(resolver.resolve(f, in: withOverlay))
        }
      }
    }
    let table = flat
    for (name, facts) in [("subdomain", hostFacts), ("secret key", keyFacts)] {
      Benchmark("resolve + policy (\(name))", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for i in benchmark.scaledIterations {
          var f = facts[i % facts.count]
          f.host = HostName.normalize(f.host) ?? f.host
          blackHole(resolver.resolve(f, in: table))
        }
      }
      Benchmark("resolve + policy + sign (\(name))", configuration: .init(scalingFactor: .kilo)) { benchmark in
        var signer = TenantTokenSigner(keys: [SigningKey(kid: "dev-1", material: .hs256(SymmetricKey(data: secret)))], issuer: "tenant-gateway", ttlSeconds: 60)
        for i in benchmark.scaledIterations {
          var f = facts[i % facts.count]
          f.host = HostName.normalize(f.host) ?? f.host
          guard case .success(let t) = resolver.resolve(f, in: table) else { continue }
          let token = signer.sign(now: now) { c in
            c.add("aud", t.upstream)
            table.withShopID(t.shop) { c.add("shop_id", bytes: $0) }
            table.withSubdomain(t.shop) { c.add("shop_subdomain", bytes: $0) }
            c.add("mode", "live")
            c.add("auth", t.auth.claim)
            if let key = t.key { table.withKeyID(key) { c.add("key_id", bytes: $0) } }
            c.add("host", f.host)
            c.add("jti", "3f6279140667843a0000000000000001")
            c.add("htm", f.method)
            c.add("htu", f.path)
          }
          blackHole(token)
        }
      }
    }
  }

  // The path's normal form (RequestPath, PRODUCT.md §3) on every request: an already-normal target
  // is one scan and the caller's String copies; a spelling that needs rewriting builds a new one.
  let normalTargets = ["/v1/admin/products?page=2", "/products/shoes/blue-suede", "/v1/store/customers/me/orders", "/"]
  let oddTargets = ["//%76%31/admin/./products?page=2", "/products/%7eshoes//blue-suede/", "/v1/store/../admin/orders", "/caf%c3%a9"]
  for (name, targets) in [("already normal", normalTargets), ("rewritten", oddTargets)] {
    Benchmark("request path normal form (\(name))", configuration: .init(scalingFactor: .kilo)) { benchmark in
      let subs = targets.map { Substring($0) }
      for i in benchmark.scaledIterations {
        blackHole(RequestPath.normalize(target: subs[i % subs.count]))
      }
    }
  }

  // Key resolution: SHA-256 of the presented key and the table lookup.
  Benchmark("key hash + lookup (100 000 keys)", configuration: .init(scalingFactor: .kilo)) { benchmark in
    var b = TenantTableBuilder(version: "bench", seed: 1)
    for i in 0..<100_000 {
      let id = "00000000-0000-4000-8000-" + String(repeating: "0", count: 12 - String(i).count) + String(i)
      b.addShop(ShopInput(id: id, subdomain: "shop\(i)"))
      b.addKey(KeyInput(id: "key_\(i)", shopID: id, sha256: KeyDigest.of(key: "sk_live_\(i)").hex, kind: "secret", mode: "live"))
    }
    let table = try b.finish()
    let keys = (0..<1000).map { "sk_live_\($0 * 97)" }
    benchmark.startMeasurement()
    for i in benchmark.scaledIterations {
      blackHole(table.key(digest: KeyDigest.of(key: keys[i % keys.count])))
    }
  }
}
