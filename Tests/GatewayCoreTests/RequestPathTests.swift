import Testing

@testable import GatewayCore

@Suite("Request path normal form (§3)")
struct RequestPathTests {
  /// One row per shape: the target as received → the target forwarded (path plus query as received).
  @Test(
    "Equivalent spellings normalise to one form",
    arguments: [
      // Already normal: returned as it came.
      ("/", "/"),
      ("/v1/admin/orders", "/v1/admin/orders"),
      ("/v1/admin/orders?x=1&y=%2F", "/v1/admin/orders?x=1&y=%2F"),
      ("/files/a..b/.well-known/x", "/files/a..b/.well-known/x"),
      ("/caf%C3%A9", "/caf%C3%A9"),
      // Percent-encoded unreserved characters are decoded (RFC 3986 §6.2.2.2).
      ("/%76%31/admin/orders", "/v1/admin/orders"),
      ("/%7E%2D%5F%2E%41z", "/~-_.Az"),
      ("/v1/%61dmin/", "/v1/admin/"),
      // Other escapes are kept with upper-case hex (§6.2.2.1); never decoded twice.
      ("/caf%c3%a9", "/caf%C3%A9"),
      ("/a%3fb", "/a%3Fb"),
      ("/a%2525", "/a%2525"),
      ("/a%3Bb", "/a%3Bb"),
      // Repeated slashes are merged.
      ("//v1/admin/orders", "/v1/admin/orders"),
      ("/v1//admin///orders//", "/v1/admin/orders/"),
      ("//", "/"),
      // Dot-segments are removed (§5.2.4), whether spelt or encoded; `..` stops at the root.
      ("/v1/store/../admin/orders", "/v1/admin/orders"),
      ("/v1/store/%2e%2e/admin/orders", "/v1/admin/orders"),
      ("/v1/store/.%2E/admin/orders", "/v1/admin/orders"),
      ("/v1/./admin/./orders", "/v1/admin/orders"),
      ("/../../v1/admin", "/v1/admin"),
      ("/a/b/..", "/a/"),
      ("/a/b/.", "/a/b/"),
      ("/a/..", "/"),
      ("/.", "/"),
      ("/..", "/"),
      ("/a/.//b", "/a/b"),
      // The query is carried as received; only the path is rewritten.
      ("//a/../b?c=/../d", "/b?c=/../d"),
      ("/%41?%41", "/A?%41"),
      // Case is kept (prefixes are compared without it, RouteTable).
      ("/V1/Admin/Orders", "/V1/Admin/Orders"),
    ])
  func normalises(_ input: String, _ expected: String) throws {
    let n = try RequestPath.normalize(target: input).get()
    #expect(n.target == expected)
    let path = expected.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? expected
    #expect(n.path == path)
    // The normal form is a fixed point: normalising it again changes nothing.
    #expect(try RequestPath.normalize(target: n.target).get() == n)
  }

  @Test(
    "Shapes a backend could read as another path are refused",
    arguments: [
      ("/v1;x/admin/orders", RequestPath.Problem.pathParameter),
      ("/v1/admin/orders;jsessionid=1", .pathParameter),
      ("/v1/admin/orders#x", .fragment),
      ("/v1/admin/orders?x#y", .fragment),
      ("/v1%2Fadmin/orders", .encodedSlash),
      ("/v1%2fadmin", .encodedSlash),
      ("/v1/store/..%2Fadmin", .encodedSlash),
      ("/v1%5Cadmin", .encodedSlash),
      ("/v1\\admin", .backslash),
      ("/v1%00/admin", .controlByte),
      ("/v1%0a/admin", .controlByte),
      ("/v1%7F", .controlByte),
      ("/a%zz", .malformedEscape),
      ("/a%4", .malformedEscape),
      ("/a%", .malformedEscape),
      ("/a%4?x", .malformedEscape),
      ("/a b", .invalidByte),
      ("/a\tb", .invalidByte),
      ("/caf\u{e9}", .invalidByte),
      ("/a?b c", .invalidQueryByte),
      ("/a?b\tc", .invalidQueryByte),
    ])
  func refuses(_ input: String, _ problem: RequestPath.Problem) {
    #expect(throws: problem) { try RequestPath.normalize(target: input).get() }
  }

  @Test("Route prefixes match the normal form, ASCII case ignored")
  func routeMatching() {
    let routes = RouteTable.default
    func rule(_ target: String) -> String? {
      guard case .success(let n) = RequestPath.normalize(target: target), let i = routes.match(path: n.path) else { return nil }
      return routes.routes[i].prefix
    }
    // Every spelling of the admin path lands on the admin rule (the audit's four bypasses).
    for target in ["/v1/admin/orders", "/%76%31/admin/orders", "//v1/admin/orders", "/V1/admin/orders", "/v1/ADMIN/orders",
      "/v1/store/../admin/orders", "/v1/./admin/orders"]
    {
      #expect(rule(target) == "/v1/admin/", "\(target)")
    }
    #expect(rule("/v1/store/x") == "/v1/store/")
    #expect(rule("/V1/Store/Customers/me") == "/v1/store/customers/")
    #expect(rule("/v1x") == "/")
    // A configured prefix with capitals matches the same paths as its lower-case spelling.
    let custom = RouteTable([Route(prefix: "/Internal/", accepts: .secretKey), Route(prefix: "/", accepts: .host)])
    #expect(custom.match(path: "/internal/x") == 0)
    #expect(custom.match(path: "/INTERNAL/x") == 0)
    #expect(custom.match(path: "/internals") == 1)
  }
}
