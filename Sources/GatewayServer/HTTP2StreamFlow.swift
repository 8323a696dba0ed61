import NIOCore
import NIOHPACK

/// A stream's response on its way out, as a value. The HEADERS are held until the first body
/// part (so a body-less response is one HEADERS frame with END_STREAM), and the latest DATA until
/// the next part or the end (so END_STREAM rides on the last DATA frame instead of an empty frame
/// of its own: one frame, and one TLS record, less per response); a streaming response still goes
/// out part by part.
/// ``HTTP2ServerHandler`` writes the frames this returns.
struct HTTP2ResponseFraming {
  /// The frame that ends the stream.
  enum Last: Equatable {
    case headers(HPACKHeaders)
    case data(ByteBuffer)
    /// Nothing was held: an empty DATA frame carries END_STREAM.
    case emptyData
  }

  /// What to write now, in order, none of it ending the stream.
  struct Writes: Equatable {
    var headers: HPACKHeaders?
    var data: ByteBuffer?
    static let nothing = Writes()
  }

  private(set) var heldHeaders: HPACKHeaders?
  private(set) var heldData: ByteBuffer?
  /// The stream's end was written (or the stream refused or reset).
  private(set) var done = false

  /// The response head: held until a body part, a flush or the end.
  mutating func head(_ headers: HPACKHeaders) { heldHeaders = headers }

  /// A body part: the held head and the previously held part go out, this one is held.
  mutating func body(_ buffer: ByteBuffer) -> Writes {
    let out = Writes(headers: heldHeaders, data: heldData)
    heldHeaders = nil
    heldData = buffer
    return out
  }

  /// The upstream's read batch ended while the response streams: write what is held.
  mutating func flush() -> Writes {
    guard !done else { return .nothing }
    let out = Writes(headers: heldHeaders, data: heldData)
    heldHeaders = nil
    heldData = nil
    return out
  }

  /// The response ended: the head (if still held and a body follows) and the last frame.
  mutating func end() -> (headers: HPACKHeaders?, last: Last) {
    defer {
      heldHeaders = nil
      heldData = nil
      done = true
    }
    if let data = heldData { return (heldHeaders, .data(data)) }
    if let headers = heldHeaders { return (nil, .headers(headers)) }
    return (nil, .emptyData)
  }

  /// The stream was answered another way (a refusal, a reset): nothing more goes out.
  mutating func finish() {
    heldHeaders = nil
    heldData = nil
    done = true
  }

  /// Takes the held head (an upgrade's answer is written by the tunnel set-up).
  mutating func takeHeaders() -> HPACKHeaders? {
    defer { heldHeaders = nil }
    return heldHeaders
  }
}

/// HTTP/2 flow-control decisions (RFC 9113 §5.2, §6.9), as pure functions of the counts.
enum HTTP2FlowControl {
  /// The connection-level receive window the gateway keeps open (bytes).
  static let connectionWindow = 1 << 20
  /// Pause the upstream read when this many response bytes of one stream are buffered …
  static let outstandingHigh = 512 * 1024
  /// … and resume it below this.
  static let outstandingLow = 128 * 1024
  /// Request-body credit is returned in WINDOW_UPDATEs of at least this (one per 16 KiB frame,
  /// not one per read).
  static let streamCreditBatch = 16384

  /// The bytes a DATA frame counts against the windows: its data and its padding, with the pad
  /// length byte (§6.1).
  static func flowControlledLength(dataBytes: Int, padding: Int?) -> Int {
    dataBytes + (padding.map { $0 + 1 } ?? 0)
  }

  /// The connection WINDOW_UPDATE to send at the end of a read cycle, if any: once half the
  /// window is consumed.
  static func connectionWindowUpdate(credit: Int) -> Int? {
    credit >= connectionWindow / 2 ? credit : nil
  }

  /// The stream WINDOW_UPDATE for request-body bytes the upstream took, if any. Never after the
  /// client ended the stream: NIOHTTP2 counts it half-closed and refuses an update for it.
  static func streamWindowUpdate(uncredited: Int, requestEnded: Bool) -> Int? {
    uncredited >= streamCreditBatch && !requestEnded ? uncredited : nil
  }

  /// After writing response bytes: true when the upstream should be paused now.
  static func shouldPause(outstanding: Int, paused: Bool) -> Bool { !paused && outstanding > outstandingHigh }

  /// After bytes reached the wire: true when the paused upstream should resume now.
  static func shouldResume(outstanding: Int, paused: Bool) -> Bool { paused && outstanding < outstandingLow }
}
