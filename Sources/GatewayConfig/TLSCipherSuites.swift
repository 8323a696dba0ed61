/// The TLS 1.2 cipher suites `tls.ciphers` may name (PRODUCT.md §7): the certificate-based suites
/// BoringSSL implements (the ones NIOSSL's `NIOTLSCipher` lists), by their OpenSSL name, as nginx
/// and HAProxy spell them, or their IANA name, as Go and Caddy do.
///
/// A fixed table rather than BoringSSL's cipher-string syntax: its parser skips names it does not
/// know as long as one matches (a typo would silently drop a suite), and NIOSSL stops the process
/// when none does. So an entry is a suite, checked here with its key path.
public enum TLSCipherSuites {
  /// OpenSSL name → IANA name.
  public static let known: [(openssl: String, iana: String)] = [
    ("ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    ("ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    ("ECDHE-ECDSA-AES256-GCM-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    ("ECDHE-RSA-AES256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    ("ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
    ("ECDHE-RSA-CHACHA20-POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
    ("ECDHE-ECDSA-AES128-SHA", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"),
    ("ECDHE-ECDSA-AES256-SHA", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"),
    ("ECDHE-RSA-AES128-SHA", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
    ("ECDHE-RSA-AES256-SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
    ("AES128-GCM-SHA256", "TLS_RSA_WITH_AES_128_GCM_SHA256"),
    ("AES256-GCM-SHA384", "TLS_RSA_WITH_AES_256_GCM_SHA384"),
    ("AES128-SHA", "TLS_RSA_WITH_AES_128_CBC_SHA"),
    ("AES256-SHA", "TLS_RSA_WITH_AES_256_CBC_SHA"),
  ]

  /// Mozilla's "intermediate" TLS 1.2 suites (server-side TLS guidelines v5.7): ECDHE key exchange
  /// and AEAD only, ECDSA before RSA. Its three DHE suites are left out: BoringSSL has no
  /// finite-field DHE. What `tls.ciphers: []` means.
  public static let mozillaIntermediate = [
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
  ]

  /// The OpenSSL name of a suite given by either name (ASCII case ignored), or nil.
  public static func openSSLName(_ name: String) -> String? {
    let upper = name.uppercased()
    return known.first { $0.openssl == upper || $0.iana == upper }?.openssl
  }
}
