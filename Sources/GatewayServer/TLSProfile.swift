import GatewayConfig
import GatewayACME
import NIOSSL

/// The protocol settings every server certificate's TLS context gets: `tls.min_version`,
/// `tls.ciphers` and ALPN (PRODUCT.md §7). One place, so the configured certificates, the
/// custom-domain certificates loaded by SNI and any later source of certificates cannot differ.
public struct TLSProfile: Sendable {
  let minimumVersion: TLSVersion
  /// The OpenSSL cipher string for TLS 1.2.
  let cipherSuites: String

  /// From `tls.min_version` (`1.2` or `1.3`) and `tls.ciphers`, OpenSSL names as the config
  /// loader checked them (`[]`: Mozilla "intermediate", ``TLSCipherSuites/mozillaIntermediate``;
  /// what it removes from NIOSSL's default list: the CBC suites with SHA-1 MACs, testssl's
  /// "obsolete CBC" and LUCKY13 findings, and static-RSA key exchange, which has no forward secrecy).
  public init(minVersion: String, ciphers: [String]) {
    minimumVersion = minVersion == "1.3" ? .tlsv13 : .tlsv12
    cipherSuites = (ciphers.isEmpty ? TLSCipherSuites.mozillaIntermediate : ciphers).joined(separator: ":")
  }

  public init(_ tls: GatewayConfig.TLS) {
    self.init(minVersion: tls.minVersion, ciphers: tls.ciphers)
  }

  /// A server configuration for one certificate chain and its key.
  func serverConfiguration(chain: [NIOSSLCertificate], key: NIOSSLPrivateKey) -> TLSConfiguration {
    var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
    tls.minimumTLSVersion = minimumVersion
    tls.cipherSuites = cipherSuites
    tls.applicationProtocols = ["h2", "http/1.1"]
    return tls
  }

  /// The tls-alpn-01 validation handshake (RFC 8737 §3): the challenge certificate, and ALPN
  /// `acme-tls/1` only, so nothing but a validation can complete on it.
  func challengeConfiguration(_ challenge: ChallengeCertificate) throws -> TLSConfiguration {
    let chain = try NIOSSLCertificate.fromPEMBytes(Array(challenge.certificatePEM.utf8))
    let key = try NIOSSLPrivateKey(bytes: Array(challenge.privateKeyPEM.utf8), format: .pem)
    var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
    tls.minimumTLSVersion = .tlsv12
    tls.applicationProtocols = [ChallengeCertificate.alpnProtocol]
    return tls
  }
}
