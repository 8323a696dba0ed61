import Foundation
import Testing

@testable import GatewayCore

/// docs/policy.md's decision table is test data: every row is run through the resolver.
@Suite("docs/policy.md decision table matches the resolver")
struct PolicyDocumentTests {
  struct DocRow: CustomTestStringConvertible, Sendable {
    var cells: [String]
    var testDescription: String { cells.joined(separator: " | ") }
  }

  static let rows: [DocRow] = {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("docs/policy.md")
    guard let text = try? String(contentsOf: url, encoding: .utf8),
      let begin = text.range(of: "<!-- decision-table:begin -->"), let end = text.range(of: "<!-- decision-table:end -->")
    else { return [] }
    return text[begin.upperBound..<end.lowerBound].split(separator: "\n")
      .filter { $0.hasPrefix("|") && !$0.hasPrefix("| host") && !$0.hasPrefix("|---") }
      .map { line in DocRow(cells: line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast().map { $0.trimmingCharacters(in: .whitespaces) }) }
  }()

  @Test("The table has rows")
  func hasRows() { #expect(Self.rows.count >= 30) }

  @Test("Each row", arguments: rows)
  func row(_ row: DocRow) throws {
    let c = row.cells
    try #require(c.count == 7)
    let facts = RequestFacts(
      host: c[0], method: c[2], path: c[1], bearer: c[3].isEmpty ? nil : c[3], publishableKey: c[4].isEmpty ? nil : c[4],
      origin: c[5].isEmpty ? nil : c[5])
    let table = try Fixture.table()
    let outcome = TenantResolver(settings: ResolverSettings(platform: Fixture.platform)).resolve(facts, in: table)
    let shops = [Fixture.acme: "acme", Fixture.bibi: "bibi", Fixture.tea: "tea"]
    let got: String
    switch outcome {
    case .success(let t): got = "forward \(shops[table.shopID(t.shop)] ?? "?") \(t.auth.claim) \(t.mode)"
    case .failure(let r): got = "\(r.status) \(r.code)"
    }
    #expect(got == c[6])
  }
}
