import GatewayConfig
import NIOSSL
import Testing

@testable import GatewayServer

@Suite("TLS profile and tls.ciphers names")
struct TLSProfileUnitTests {
  @Test("Every name tls.ciphers accepts is a suite BoringSSL enables, with the IANA name the table gives")
  func tableMatchesTheLibrary() {
    // BoringSSL skips names it does not know (as long as one matches), so reading back what it
    // enabled shows a misspelt table entry as a missing suite.
    var probe = TLSConfiguration.makeClientConfiguration()
    probe.maximumTLSVersion = .tlsv12
    probe.cipherSuites = TLSCipherSuites.known.map(\.openssl).joined(separator: ":")
    let enabled = probe.cipherSuiteValues
    #expect(enabled.count == TLSCipherSuites.known.count, "\(enabled.map(\.rawValue))")
    let byIANA: [String: NIOTLSCipher] = [
      "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": .TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
      "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": .TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
      "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
      "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": .TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
      "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": .TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
      "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": .TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
      "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": .TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
      "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": .TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
      "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": .TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
      "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": .TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
      "TLS_RSA_WITH_AES_128_GCM_SHA256": .TLS_RSA_WITH_AES_128_GCM_SHA256,
      "TLS_RSA_WITH_AES_256_GCM_SHA384": .TLS_RSA_WITH_AES_256_GCM_SHA384,
      "TLS_RSA_WITH_AES_128_CBC_SHA": .TLS_RSA_WITH_AES_128_CBC_SHA,
      "TLS_RSA_WITH_AES_256_CBC_SHA": .TLS_RSA_WITH_AES_256_CBC_SHA,
    ]
    for (openssl, iana) in TLSCipherSuites.known {
      guard let cipher = byIANA[iana] else {
        Issue.record("\(iana) is not a NIOTLSCipher")
        continue
      }
      #expect(enabled.contains(cipher), "\(openssl) / \(iana) is not enabled by BoringSSL")
    }
  }

  @Test("The default is Mozilla intermediate: ECDHE and AEAD only, as BoringSSL reads it")
  func defaultProfile() {
    var probe = TLSConfiguration.makeClientConfiguration()
    probe.maximumTLSVersion = .tlsv12
    probe.cipherSuites = TLSProfile(minVersion: "1.2", ciphers: []).cipherSuites
    let enabled = Set(probe.cipherSuiteValues)
    #expect(enabled == [
      .TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, .TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
      .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, .TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
      .TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, .TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ])
  }

  @Test("Names are taken in OpenSSL or IANA spelling, any case; anything else is nil")
  func names() {
    #expect(TLSCipherSuites.openSSLName("ecdhe-ecdsa-aes256-gcm-sha384") == "ECDHE-ECDSA-AES256-GCM-SHA384")
    #expect(TLSCipherSuites.openSSLName("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256") == "ECDHE-RSA-CHACHA20-POLY1305")
    for bad in ["ECDHE-ECDSA-AES256-GCM-SHA385", "ECDH+AESGCM", "!aNULL", "DEFAULT", "", "TLS_AES_128_GCM_SHA256", "A:B"] {
      #expect(TLSCipherSuites.openSSLName(bad) == nil, "\(bad)")
    }
  }
}
