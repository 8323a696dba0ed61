/// The rules every identifier and label in a table follows, and the quoting that keeps a hostile
/// value short in an error message.
extension TenantTableBuilder {
  /// Ids (shop and key) end up in headers and tokens: printable ASCII without quotes or spaces.
  static func isValidIdentifier(_ id: UnsafeRawBufferPointer) -> Bool {
    guard !id.isEmpty, id.count <= 128 else { return false }
    return id.allSatisfy { b in
      (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
        || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "-") || b == UInt8(ascii: "_")
        || b == UInt8(ascii: ".") || b == UInt8(ascii: ":")
    }
  }

  /// One DNS label: 1–63 of `[a-z0-9-]`, not starting or ending with `-`.
  public static func isValidLabel(_ label: String) -> Bool { isValidLabel(Array(label.utf8)) }

  static func isValidLabel(_ bytes: [UInt8]) -> Bool {
    guard !bytes.isEmpty, bytes.count <= HostName.maxLabelLength, bytes.first != UInt8(ascii: "-"),
      bytes.last != UInt8(ascii: "-")
    else { return false }
    return bytes.allSatisfy { b in
      (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"))
        || b == UInt8(ascii: "-")
    }
  }
}

@inline(__always)
func bytesEqual(_ a: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
  let n = literal.utf8CodeUnitCount
  guard a.count == n else { return false }
  return literal.withUTF8Buffer { l in (0..<n).allSatisfy { a[$0] == l[$0] } }
}

func string(_ b: UnsafeRawBufferPointer) -> String { String(decoding: b, as: UTF8.self) }
func quoted(_ b: UnsafeRawBufferPointer) -> String { quoted(string(b)) }
func quoted(_ b: [UInt8]) -> String { quoted(String(decoding: b, as: UTF8.self)) }

/// A value in quotes for error messages, truncated so a hostile snapshot cannot flood the log.
func quoted(_ s: String) -> String {
  let cut = s.count > 80 ? String(s.prefix(80)) + "…" : s
  var out = ""
  JSONText.appendQuoted(cut, to: &out)
  return out
}
