import Testing

@testable import GatewayCore

@Suite("Host normalisation (§2)")
struct HostNameTests {
  @Test(
    "Valid hosts normalise",
    arguments: [
      ("acme.platform.example", "acme.platform.example"),
      ("ACME.Platform.Example", "acme.platform.example"),
      ("acme.platform.example:8443", "acme.platform.example"),
      ("acme.platform.example.", "acme.platform.example"),
      ("acme.platform.example.:443", "acme.platform.example"),
      ("shop-1.acme.com", "shop-1.acme.com"),
      ("xn--bcher-kva.example", "xn--bcher-kva.example"),
      ("127.0.0.1", "127.0.0.1"),
      ("127.0.0.1:8443", "127.0.0.1"),
      ("[::1]", "[::1]"),
      ("[::1]:8443", "[::1]"),
      ("[FE80::1]", "[fe80::1]"),
      ("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]", "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]"),
      ("localhost", "localhost"),
      ("a:", "a"),
    ])
  func valid(_ input: String, _ expected: String) {
    #expect(HostName.normalize(input) == expected)
  }

  @Test(
    "Invalid hosts are refused",
    arguments: [
      "", ".", "..", "a..b", ".acme.com", "acme.com..", "-acme.com", "acme-.com", "acme.-x.com",
      "acme_shop.com", "acme.com:99999", "acme.com:80:80", "acme.com:8a", "ac me.com", "acme.com/x",
      "user@acme.com", "acme.cöm", "[::1", "[zz::1]", "[::1]x", "acme.com\u{0}", "*.acme.com",
      String(repeating: "a", count: 64) + ".com", String(repeating: "a.", count: 127) + "com",
      // Bracket contents that are no IPv6 address (found by Fuzz/FuzzHostName).
      "[" + String(repeating: "c", count: 250) + "]", "[1.2.3.4]", "[abc]", "[f:" + String(repeating: "0", count: 44) + "]",
    ])
  func invalid(_ input: String) {
    #expect(HostName.normalize(input) == nil)
  }

  @Test("An already-normal host is returned as the same string (no allocation on the hot path)")
  func unchangedIsIdentity() {
    let host = "acme.platform.example"
    let n = HostName.normalize(host)
    #expect(n == host)
  }
}

@Suite("Origin normalisation (§3)")
struct OriginTests {
  @Test(
    "Origins that can match, serialised",
    arguments: [
      ("https://acme.com", "https://acme.com"),
      ("HTTPS://ACME.COM", "https://acme.com"),
      ("https://acme.com:443", "https://acme.com"),
      ("http://acme.com:80", "http://acme.com"),
      ("https://acme.com:8443", "https://acme.com:8443"),
      ("http://localhost:3000", "http://localhost:3000"),
      ("https://acme.com:0443", "https://acme.com"),
    ])
  func valid(_ input: String, _ expected: String) {
    #expect(Origin.normalize(input) == expected)
  }

  @Test(
    "Origins that never match",
    arguments: [
      "null", "", "acme.com", "https://", "https://user@acme.com", "https://user:pw@acme.com",
      "https://acme.com/", "https://acme.com/path", "https://acme.com?x", "https://acme.com#x",
      "https://*.acme.com", "*", "ftp://acme.com", "chrome-extension://abc", "https://acme.com.",
      "https://acme.com:0", "https://acme.com:99999", "https://acme.com:", "https://[::1]",
      "https://acme .com", "https://acme.com\\@evil.com",
    ])
  func invalid(_ input: String) {
    #expect(Origin.normalize(input) == nil)
  }

  @Test("Snapshot entries may carry one trailing slash")
  func trailingSlashInSnapshot() {
    #expect(Origin.normalize("https://acme.com/", allowTrailingSlash: true) == "https://acme.com")
    #expect(Origin.normalize("https://acme.com/x", allowTrailingSlash: true) == nil)
  }

  @Test("Suffix tricks do not match the shorter origin")
  func suffixTricks() {
    #expect(Origin.normalize("https://acme.com.evil.com") == "https://acme.com.evil.com")
    #expect(Origin.normalize("https://acme.com.evil.com") != Origin.normalize("https://acme.com"))
    #expect(Origin.normalize("http://acme.com") != Origin.normalize("https://acme.com"))
  }
}

@Suite("Origin fast path agrees with the full normalisation")
struct OriginFastPathTests {
  @Test(
    "isAlreadyNormal(x) implies normalize(x) == x",
    arguments: [
      "https://acme.com", "http://acme.com", "https://acme.com:8443", "http://localhost:3000", "https://acme.com:443",
      "http://acme.com:80", "https://ACME.com", "https://acme.com.", "https://-acme.com", "https://acme-.com",
      "https://a..b", "https://acme.com:0443", "https://acme.com:", "https://acme.com:99999", "https://acme.com/",
      "https://xn--bcher-kva.example", "https://1.2.3.4", "https://a_b.com", "https://" + String(repeating: "a", count: 64) + ".com",
    ])
  func agrees(_ input: String) {
    let fast = Origin.isAlreadyNormal(input)
    var slow = input
    // The slow path alone: bypass the fast path by normalising a copy with an upper-case scheme.
    slow = "HTTP" + slow.dropFirst(4)
    let full = Origin.normalize(slow)
    if fast { #expect(full == input, "\(input)") }
    if full == input { #expect(fast, "fast path missed a normal origin: \(input)") }
  }
}
