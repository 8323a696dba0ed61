import Crypto
import Foundation
import GatewaySigning

/// The ACME account's key: P-256, signing every request as ES256 (RFC 8555 §6.2, RFC 7518 §3.4).
public struct ACMEAccountKey: Sendable {
  public let privateKey: P256.Signing.PrivateKey

  public init(_ privateKey: P256.Signing.PrivateKey = P256.Signing.PrivateKey()) {
    self.privateKey = privateKey
  }

  /// Reads a PEM (PKCS#8 or SEC1) key, as ``pemRepresentation`` writes it.
  public init(pem: String) throws {
    self.privateKey = try P256.Signing.PrivateKey(pemRepresentation: pem)
  }

  public var pemRepresentation: String { privateKey.pemRepresentation }

  /// The public JWK with its members in lexicographic order and no whitespace: the exact bytes
  /// RFC 7638 §3 hashes for the thumbprint, and a valid `jwk` header member as well.
  public var jwkJSON: String {
    // x963: 0x04 || X (32 bytes) || Y (32 bytes).
    let raw = Array(privateKey.publicKey.x963Representation)
    let x = Base64URL.encode(raw[1..<33])
    let y = Base64URL.encode(raw[33..<65])
    return #"{"crv":"P-256","kty":"EC","x":"\#(x)","y":"\#(y)"}"#
  }

  /// The JWK thumbprint (RFC 7638, SHA-256), base64url: the account's half of every key
  /// authorization (RFC 8555 §8.1).
  public var thumbprint: String {
    Base64URL.encode(Array(SHA256.hash(data: Data(jwkJSON.utf8))))
  }

  /// `token || "." || thumbprint` (RFC 8555 §8.1): what an http-01 response carries and what a
  /// tls-alpn-01 certificate hashes.
  public func keyAuthorization(token: String) -> String { token + "." + thumbprint }
}

/// How a request names its signer (RFC 8555 §6.2): `jwk` only for newAccount (and revocation by
/// certificate key), `kid` (the account URL) for everything else.
public enum JWSSigner: Sendable, Equatable {
  case jwk
  case kid(String)
}

/// External account binding (RFC 8555 §7.3.4): the CA's key id and its HMAC key (base64url, as
/// CAs hand it out), proving the new account belongs to an account at the CA.
public struct ExternalAccountBinding: Sendable, Equatable {
  public let keyID: String
  public let hmacKey: [UInt8]

  public init(keyID: String, hmacKeyBase64URL: String) throws {
    guard let key = Base64URL.decode(hmacKeyBase64URL.trimmingCharacters(in: .whitespacesAndNewlines)), !key.isEmpty else {
      throw ACMEError.invalidConfiguration("the external account binding HMAC key is not base64url")
    }
    self.keyID = keyID
    self.hmacKey = key
  }
}

/// Flattened JSON JWS serialisation (RFC 7515 §7.2.2), the only one ACME accepts (RFC 8555 §6.2).
public enum JWS {
  /// A signed request body. `payload` nil is POST-as-GET (an empty payload, RFC 8555 §6.3).
  public static func sign(
    payload: Data?, url: String, nonce: String, signer: JWSSigner, key: ACMEAccountKey
  ) throws -> Data {
    var header = #"{"alg":"ES256","#
    switch signer {
    case .jwk: header += #""jwk":\#(key.jwkJSON),"#
    case .kid(let kid): header += #""kid":\#(jsonString(kid)),"#
    }
    header += #""nonce":\#(jsonString(nonce)),"url":\#(jsonString(url))}"#
    let protected = Base64URL.encode(Array(header.utf8))
    let payloadPart = payload.map { Base64URL.encode(Array($0)) } ?? ""
    let signingInput = Data((protected + "." + payloadPart).utf8)
    // JWS ES256 is the raw r || s (RFC 7518 §3.4), not DER.
    let signature = try key.privateKey.signature(for: signingInput).rawRepresentation
    return body(protected: protected, payload: payloadPart, signature: Base64URL.encode(Array(signature)))
  }

  /// The `externalAccountBinding` member of a newAccount payload (RFC 8555 §7.3.4): an HS256 JWS
  /// over the account's JWK, with the CA's key id and the newAccount URL.
  public static func externalAccountBinding(_ eab: ExternalAccountBinding, url: String, key: ACMEAccountKey) -> Data {
    let header = #"{"alg":"HS256","kid":\#(jsonString(eab.keyID)),"url":\#(jsonString(url))}"#
    let protected = Base64URL.encode(Array(header.utf8))
    let payload = Base64URL.encode(Array(key.jwkJSON.utf8))
    let mac = HMAC<SHA256>.authenticationCode(
      for: Data((protected + "." + payload).utf8), using: SymmetricKey(data: eab.hmacKey))
    return body(protected: protected, payload: payload, signature: Base64URL.encode(Array(mac)))
  }

  private static func body(protected: String, payload: String, signature: String) -> Data {
    Data(#"{"protected":"\#(protected)","payload":"\#(payload)","signature":"\#(signature)"}"#.utf8)
  }

  /// A JSON string literal (URLs, nonces and key ids are ASCII, but escape what JSON requires anyway).
  static func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
      default: out.unicodeScalars.append(scalar)
      }
    }
    return out + "\""
  }
}
