/// The JWS `alg` names the gateway knows (RFC 7518 §3.1, RFC 8037 §3.1), shared by the keys that
/// sign X-Tenant (HS256, EdDSA) and the keys that verify session tokens (HS256, ES256, EdDSA), so
/// the config, the token header and the key agree on one spelling.
public enum JOSEAlgorithm: String, Sendable, CaseIterable {
  case hs256 = "HS256"
  case es256 = "ES256"
  case eddsa = "EdDSA"
}
