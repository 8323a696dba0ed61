import Crypto
import Foundation
import SwiftASN1
import X509

/// The tls-alpn-01 challenge certificate (RFC 8737 §3): self-signed, one dNSName (the domain), and
/// the critical `id-pe-acmeIdentifier` extension holding SHA-256 of the key authorization. The CA
/// reads it from a handshake that offers only ALPN `acme-tls/1`; nothing else is ever served it.
public struct ChallengeCertificate: Sendable {
  /// id-pe-acmeIdentifier, 1.3.6.1.5.5.7.1.31 (RFC 8737 §6.1).
  public static let acmeIdentifierOID: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 1, 31]
  /// The ALPN protocol id of the challenge (RFC 8737 §6.2).
  public static let alpnProtocol = "acme-tls/1"

  public let domain: String
  public let certificatePEM: String
  public let privateKeyPEM: String

  /// Makes a fresh key and certificate for `domain` and `keyAuthorization`.
  public init(domain: String, keyAuthorization: String, now: Date = Date()) throws {
    let key = P256.Signing.PrivateKey()
    let digest = Array(SHA256.hash(data: Data(keyAuthorization.utf8)))
    // extnValue is the DER of `Authorization ::= OCTET STRING (SIZE (32))`.
    var serializer = DER.Serializer()
    try serializer.serialize(ASN1OctetString(contentBytes: digest[...]))
    let identifier = Certificate.Extension(oid: Self.acmeIdentifierOID, critical: true, value: serializer.serializedBytes[...])
    let extensions = try Certificate.Extensions([
      try Certificate.Extension(SubjectAlternativeNames([.dnsName(domain)]), critical: false),
      identifier,
    ])
    let subject = try DistinguishedName { CommonName("ACME challenge for \(domain)") }
    let certificate = try Certificate(
      version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
      notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(7 * 86400),
      issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
      issuerPrivateKey: .init(key))
    self.domain = domain
    self.certificatePEM = try certificate.serializeAsPEM().pemString
    self.privateKeyPEM = key.pemRepresentation
  }

  /// The key authorization digest a certificate carries, or nil without a critical acmeIdentifier
  /// (what a validating CA checks; the tests use it on what the listener served).
  public static func acmeIdentifierDigest(of certificate: Certificate) -> [UInt8]? {
    guard let ext = certificate.extensions[oid: acmeIdentifierOID], ext.critical else { return nil }
    guard let octets = try? ASN1OctetString(derEncoded: ext.value) else { return nil }
    return Array(octets.bytes)
  }
}

/// The key and CSR of one certificate order: a fresh P-256 key per order (never the account key,
/// RFC 8555 §11.1), the domain as the only subjectAltName.
public struct CertificateRequest: Sendable {
  public let domain: String
  public let privateKey: P256.Signing.PrivateKey
  public let der: [UInt8]

  public init(domain: String, privateKey: P256.Signing.PrivateKey = P256.Signing.PrivateKey()) throws {
    let extensions = try Certificate.Extensions {
      SubjectAlternativeNames([.dnsName(domain)])
    }
    let csr = try CertificateSigningRequest(
      version: .v1, subject: try DistinguishedName { CommonName(domain) },
      privateKey: .init(privateKey),
      attributes: CertificateSigningRequest.Attributes([
        try .init(ExtensionRequest(extensions: extensions))
      ]))
    var serializer = DER.Serializer()
    try serializer.serialize(csr)
    self.domain = domain
    self.privateKey = privateKey
    self.der = serializer.serializedBytes
  }
}
