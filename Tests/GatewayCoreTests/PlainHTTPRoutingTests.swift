import Testing

@testable import GatewayCore

@Suite("Plain HTTP: §10 http-01, 308 to https, 421 for the rest")
struct PlainHTTPRoutingTests {
  struct Row: CustomTestStringConvertible, Sendable {
    var name: String
    var target: String
    var host: String?
    var port = 443
    var expected: PlainHTTPAnswer
    var testDescription: String { name }
  }

  static let token = "tok-3kX_9q"
  static let rows: [Row] = [
    Row(name: "pending token, any Host", target: "/.well-known/acme-challenge/\(token)", host: "whatever.invalid",
        expected: .challenge(keyAuthorization: "\(token).thumb")),
    Row(name: "pending token, no Host at all", target: "/.well-known/acme-challenge/\(token)", host: nil,
        expected: .challenge(keyAuthorization: "\(token).thumb")),
    Row(name: "unknown token on a known host is redirected", target: "/.well-known/acme-challenge/nope", host: "shop.acme.com",
        expected: .redirect(location: "https://shop.acme.com/.well-known/acme-challenge/nope")),
    Row(name: "token with a slash is not a token", target: "/.well-known/acme-challenge/\(token)/x", host: "unknown.example",
        expected: .refuse(.unknownHost)),
    Row(name: "custom domain", target: "/products?id=7", host: "shop.acme.com",
        expected: .redirect(location: "https://shop.acme.com/products?id=7")),
    Row(name: "custom domain, port and trailing dot and case normalised", target: "/", host: "Bibi.Example.:80",
        expected: .redirect(location: "https://bibi.example/")),
    Row(name: "subdomain", target: "/cart", host: "acme.platform.example",
        expected: .redirect(location: "https://acme.platform.example/cart")),
    Row(name: "suspended shop's subdomain is still a known host", target: "/", host: "tea.platform.example",
        expected: .redirect(location: "https://tea.platform.example/")),
    Row(name: "API host", target: "/v1/orders", host: "api.platform.example",
        expected: .redirect(location: "https://api.platform.example/v1/orders")),
    Row(name: "dashboard host", target: "/", host: "dashboard.platform.example",
        expected: .redirect(location: "https://dashboard.platform.example/")),
    Row(name: "https port other than 443 is named", target: "/a", host: "shop.acme.com", port: 8443,
        expected: .redirect(location: "https://shop.acme.com:8443/a")),
    Row(name: "unknown custom domain", target: "/", host: "unknown.example", expected: .refuse(.unknownHost)),
    Row(name: "unknown subdomain", target: "/", host: "nobody.platform.example", expected: .refuse(.unknownHost)),
    Row(name: "platform domain itself", target: "/", host: "platform.example", expected: .refuse(.unknownHost)),
    Row(name: "no Host", target: "/", host: nil, expected: .refuse(.invalidHost)),
    Row(name: "invalid Host", target: "/", host: "bad host", expected: .refuse(.invalidHost)),
    Row(name: "userinfo in Host", target: "/", host: "evil.example@shop.acme.com", expected: .refuse(.invalidHost)),
    Row(name: "absolute form, same authority", target: "http://shop.acme.com/x?y", host: "shop.acme.com",
        expected: .redirect(location: "https://shop.acme.com/x?y")),
    Row(name: "absolute form, no path", target: "http://shop.acme.com", host: "shop.acme.com",
        expected: .redirect(location: "https://shop.acme.com/")),
    Row(name: "absolute form, authority differs from Host", target: "http://shop.acme.com/", host: "bibi.example",
        expected: .refuse(.invalidHost)),
    Row(name: "absolute form names another origin", target: "http://evil.example/", host: nil,
        expected: .refuse(.unknownHost)),
    Row(name: "double slash stays a path on the same host", target: "//evil.example/x", host: "shop.acme.com",
        expected: .redirect(location: "https://shop.acme.com//evil.example/x")),
    Row(name: "target that is neither origin nor absolute form", target: "evil.example/x", host: "shop.acme.com",
        expected: .refuse(.invalidRequest)),
  ]

  @Test(arguments: rows)
  func answer(_ row: Row) throws {
    let table = try Fixture.table()
    let got = PlainHTTPRouting.answer(
      target: row.target, hostHeader: row.host, platform: Fixture.platform, table: table, httpsPort: row.port,
      challenge: { $0 == Self.token ? "\($0).thumb" : nil })
    #expect(got == row.expected)
  }
}
