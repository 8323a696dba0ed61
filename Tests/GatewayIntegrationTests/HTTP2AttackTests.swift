import Foundation
import Testing

/// PRODUCT.md §9.5 over HTTP/2: each attack shape from `clients/h2_attacks.py` (raw frames) against
/// the real gateway. Each must be answered at the protocol level (GOAWAY / RST_STREAM / 4xx), forward
/// nothing it should not, keep memory bounded, and leave the gateway serving a well-behaved client.
@Suite("HTTP/2 attack catalogue (real gateway, raw frames)")
struct HTTP2AttackTests {
  /// RSS bound during any single attack (the gateway starts at ~20–40 MiB).
  static let rssBoundKiB = 256 * 1024

  struct Attack: CustomTestStringConvertible, Sendable {
    var name: String
    /// Expected GOAWAY error code (RFC 9113 §7), nil when the connection must stay up.
    var goaway: Int?
    /// Paths that must never reach the upstream, and how many may (rapid reset: a few before the cut).
    var marker: String?
    var maxForwarded = 0
    var testDescription: String { name }
  }

  static let attacks: [Attack] = [
    Attack(name: "rapid_reset", goaway: 11, marker: "/attack/rapid-reset", maxForwarded: 300),
    // NIOHTTP2 counts the endless CONTINUATION frames as a flood (ENHANCE_YOUR_CALM).
    Attack(name: "continuation_flood", goaway: 11, marker: "/attack/continuation"),
    Attack(name: "hpack_bomb", goaway: 9, marker: "/attack/hpack-bomb"),
    Attack(name: "hpack_table_size", goaway: 9, marker: "/attack/hpack-table"),
    Attack(name: "ping_flood", goaway: 11),
    Attack(name: "settings_flood", goaway: 11),
    Attack(name: "window_update_flood", goaway: 3),
    Attack(name: "empty_data_flood", goaway: 11, marker: "/attack/empty-data", maxForwarded: 1),
    Attack(name: "authority_host_mismatch", goaway: nil, marker: "/attack/authority"),
    Attack(name: "connection_specific_header", goaway: nil, marker: "/attack/conn-specific"),
    Attack(name: "invalid_pseudo_headers", goaway: nil, marker: "/attack/pseudo"),
    Attack(name: "uppercase_header_names", goaway: nil, marker: "/attack/uppercase"),
    // h2spec http2/5.1/6: HEADERS on a half-closed (remote) stream is STREAM_CLOSED (5), here as a
    // connection error (GOAWAY), which RFC 9113 §5.4.1 allows for any stream error.
    Attack(name: "headers_after_end_stream", goaway: 5, marker: "/attack/after-end-stream"),
    // As h2spec sends it (both in one write): the first HEADERS is a request like any other.
    Attack(name: "headers_after_end_stream_fast", goaway: 5, marker: "/attack/after-end-stream", maxForwarded: 1),
    Attack(name: "malformed_semantics", goaway: nil, marker: "/attack/semantics"),
  ]

  func run(_ gw: GatewayHarness, _ attack: String) throws -> [String: Any] {
    let r = try gw.python("h2_attacks.py", [String(gw.port), attack])
    let out = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
    guard let out else { throw HarnessError(message: "h2_attacks.py \(attack): \(r.stdout) \(r.stderr)") }
    return out
  }

  func forwarded(_ gw: GatewayHarness, _ marker: String) -> Int {
    gw.upstreamRequests().filter { ($0["uri"] as? String)?.hasPrefix(marker) == true }.count
  }

  @Test("Invariant §9.5: each HTTP/2 attack is answered at the protocol level, nothing forwarded, memory bounded, others still served", arguments: attacks)
  func attack(_ a: Attack) throws {
    try withGateway { gw in
      let out = try run(gw, a.name)
      let resets = out["resets"] as? [String: Int] ?? [:]
      let responses = out["responses"] as? [String: Int] ?? [:]
      if let code = a.goaway {
        #expect(out["goaway"] as? Int == code, "\(out)")
        // RFC 9113 §5.4.1: after a GOAWAY for an error, the TCP connection is closed.
        #expect(out["closed"] as? Bool == true, "connection left open after GOAWAY(\(code)): \(out)")
      } else {
        #expect(out["goaway"] is NSNull, "\(out)")
        // A stream error costs the stream, not the connection.
        #expect(out["closed"] as? Bool == false, "\(out)")
        // Every stream refused: a stream reset (PROTOCOL_ERROR) or a 4xx from the gateway.
        let streams = out["streams"] as? Int ?? 1
        let refused = resets.values.reduce(0, +) + responses.filter { $0.key.hasPrefix("4") }.values.reduce(0, +)
        #expect(refused == streams, "\(out)")
      }
      if let marker = a.marker {
        #expect(forwarded(gw, marker) <= a.maxForwarded, "\(forwarded(gw, marker)) requests reached the upstream")
      }
      #expect(gw.gatewayRSSKiB < Self.rssBoundKiB, "RSS \(gw.gatewayRSSKiB) KiB")
      // A well-behaved client on both protocols is still served.
      #expect(try gw.curl("acme.platform.localhost", "/ok", http2: true).status == 200)
      #expect(try gw.curl("acme.platform.localhost", "/ok").status == 200)
    }
  }

  @Test("Malformed HTTP/2 requests are 400 invalid_request: whitespace around a value, a lowercase :method, :scheme http, a fragment, ; parameters")
  func malformedSemantics() throws {
    try withGateway { gw in
      let out = try run(gw, "malformed_semantics")
      let codes = out["codes"] as? [String: Any] ?? [:]
      let streams = out["streams"] as? Int ?? -1
      // Each answered 400 invalid_request by the gateway, or reset by NIOHTTP2's own checks (it
      // refuses a space in :path with RST_STREAM(PROTOCOL_ERROR)); none forwarded.
      let resets = (out["resets"] as? [String: Int])?["1"] ?? 0
      #expect(codes.count + resets == streams, "\(out)")
      #expect(codes.count >= streams - 1, "\(out)")
      for (stream, code) in codes { #expect(code as? String == "invalid_request", "stream \(stream): \(out)") }
      #expect((out["responses"] as? [String: Int])?["400"] == codes.count, "\(out)")
      #expect(out["closed"] as? Bool == false, "\(out)")
      #expect(forwarded(gw, "/attack/semantics") == 0)
    }
  }

  @Test("Too many concurrent streams: the excess is refused (REFUSED_STREAM), at most the advertised 100 reach the upstream")
  func tooManyStreams() throws {
    try withGateway { gw in
      let out = try run(gw, "too_many_streams")
      let resets = out["resets"] as? [String: Int] ?? [:]
      // The first excess stream gets RST_STREAM(REFUSED_STREAM); NIOHTTP2 then ends a connection that
      // keeps opening streams with GOAWAY, which is written ahead of buffered frames, so the client
      // may see either first. Either way no more than the advertised 100 are served.
      #expect((resets["7"] ?? 0) >= 1 || out["goaway"] is Int, "\(out)")
      #expect(((out["responses"] as? [String: Int])?.values.reduce(0, +) ?? 0) <= 100, "\(out)")
      #expect(forwarded(gw, "/__sleep/1500") <= 100)
      #expect(try gw.curl("acme.platform.localhost", "/ok", http2: true).status == 200)
    }
  }

  @Test("A stream reset mid-upload cancels the upstream request; its pooled connection is never reused dirty")
  func resetMidUpload() throws {
    try withGateway { gw in
      let out = try run(gw, "reset_mid_upload")
      // The request after the reset, on the same connection, is answered.
      #expect((out["responses"] as? [String: Int])?["200"] == 1, "\(out)")
      // The upstream saw the upload start and then a clean request: had the half-sent upload's
      // connection been reused, the next request would have been read as upload body.
      #expect(forwarded(gw, "/__upload?attack=reset-mid-upload") == 1)
      #expect(forwarded(gw, "/after-reset") == 1)
      for _ in 0..<5 {
        let r = try gw.curl("acme.platform.localhost", "/__upload", method: "POST", http2: true, extra: ["--data-binary", "hello"])
        #expect(r.status == 200)
      }
    }
  }
}
