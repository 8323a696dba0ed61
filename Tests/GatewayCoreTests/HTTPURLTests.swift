import Testing

@testable import GatewayCore

@Suite("HTTP(S) URLs for our own clients")
struct HTTPURLTests {
  @Test(
    "URLs the snapshot source and the ACME driver dial",
    arguments: [
      ("https://control.example/snapshot.json", true, "control.example", 443, "/snapshot.json", "control.example"),
      ("http://127.0.0.1:8080/s?v=2", false, "127.0.0.1", 8080, "/s?v=2", "127.0.0.1:8080"),
      ("https://127.0.0.1:14000/dir", true, "127.0.0.1", 14000, "/dir", "127.0.0.1:14000"),
      ("http://example.com", false, "example.com", 80, "/", "example.com"),
      ("http://example.com?x=1", false, "example.com", 80, "/?x=1", "example.com"),
      ("https://[::1]:8443/dir", true, "::1", 8443, "/dir", "[::1]:8443"),
      ("https://[::1]/dir", true, "::1", 443, "/dir", "[::1]"),
    ])
  func parses(_ url: String, _ tls: Bool, _ host: String, _ port: Int, _ target: String, _ hostHeader: String) throws {
    let parts = try #require(HTTPURL(url))
    #expect(parts.tls == tls)
    #expect(parts.host == host)
    #expect(parts.port == port)
    #expect(parts.target == target)
    #expect(parts.hostHeader == hostHeader)
  }

  @Test("SNI is a name, never an address")
  func serverName() {
    #expect(HTTPURL("https://control.example/")?.serverName == "control.example")
    #expect(HTTPURL("https://1password.example/")?.serverName == "1password.example")
    #expect(HTTPURL("https://127.0.0.1:14000/dir")?.serverName == nil)
    #expect(HTTPURL("https://[::1]:14000/dir")?.serverName == nil)
  }

  @Test(
    "Anything else is refused whole",
    arguments: [
      "ftp://example.com/", "example.com/snapshot", "https://", "https:///path", "http://:80/",
      "http://example.com:0/", "http://example.com:65536/", "http://example.com:abc/",
      "https://[::1/dir", "https://[::1]x/dir", "https://user@example.com/",
    ])
  func refuses(_ url: String) {
    #expect(HTTPURL(url) == nil)
  }
}
