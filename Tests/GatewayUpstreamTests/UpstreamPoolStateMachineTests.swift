import Testing

@testable import GatewayUpstream

/// Every transition of ``UpstreamPoolStateMachine``, without sockets.
@Suite("Upstream pool state machine: idle stack, connects, the bounded wait queue")
struct UpstreamPoolStateMachineTests {
  final class Conn {
    var usable = true
  }
  typealias Machine = UpstreamPoolStateMachine<Conn, String>

  static func usable(_ c: Conn) -> Bool { c.usable }

  func isConnect(_ a: Machine.Acquire) -> Bool { if case .connect = a { return true } else { return false } }
  func leased(_ a: Machine.Acquire) -> Conn? { if case .lease(let c) = a { return c } else { return nil } }
  func waitID(_ a: Machine.Acquire) -> Int? { if case .wait(let id) = a { return id } else { return nil } }
  func failed(_ a: Machine.Acquire) -> Bool { if case .fail = a { return true } else { return false } }

  @Test("Empty: connect, up to maxConnections counting connects in flight; then wait, up to maxQueue; then fail")
  func limits() {
    var m = Machine(maxConnections: 2, maxQueue: 1, maxIdle: 8)
    let a1 = m.acquire(fresh: false, isUsable: Self.usable)
    let a2 = m.acquire(fresh: false, isUsable: Self.usable)
    #expect(isConnect(a1) && isConnect(a2))
    #expect(m.connecting == 2 && m.inFlight == 2)
    let a3 = m.acquire(fresh: false, isUsable: Self.usable)
    let id = waitID(a3)
    #expect(id != nil)
    m.waiting(.init(id: id!, requester: "third", timeout: nil))
    let a4 = m.acquire(fresh: false, isUsable: Self.usable)
    #expect(failed(a4))
    #expect(m.inFlight == 3)
  }

  @Test("Released connections are reused most recent first; a closed idle one is skipped; fresh never takes an idle one")
  func idleStack() {
    var m = Machine(maxConnections: 4, maxQueue: 4, maxIdle: 8)
    let a = Conn(), b = Conn()
    _ = m.acquire(fresh: false, isUsable: Self.usable)
    _ = m.acquire(fresh: false, isUsable: Self.usable)
    m.connected()
    m.connected()
    guard case .keep = m.release(a), case .keep = m.release(b) else {
      Issue.record("both kept idle")
      return
    }
    let fresh = m.acquire(fresh: true, isUsable: Self.usable)
    #expect(isConnect(fresh))
    m.connectFailed()
    #expect(m.idle.count == 2)
    let first = m.acquire(fresh: false, isUsable: Self.usable)
    #expect(leased(first) === b)
    a.usable = false
    _ = m.release(b)
    b.usable = false
    let none = m.acquire(fresh: false, isUsable: Self.usable)
    #expect(isConnect(none))  // both idle ones were dead: dropped, and a connect instead
    #expect(m.idle.isEmpty)
  }

  @Test("A released connection goes to the first waiter; above maxIdle it is closed")
  func release() {
    var m = Machine(maxConnections: 1, maxQueue: 4, maxIdle: 0)
    _ = m.acquire(fresh: false, isUsable: Self.usable)
    m.connected()
    let w1 = waitID(m.acquire(fresh: false, isUsable: Self.usable))!
    m.waiting(.init(id: w1, requester: "one", timeout: nil))
    let w2 = waitID(m.acquire(fresh: false, isUsable: Self.usable))!
    m.waiting(.init(id: w2, requester: "two", timeout: nil))
    let c = Conn()
    guard case .handTo(let w) = m.release(c) else {
      Issue.record("the first waiter takes it")
      return
    }
    #expect(w.requester == "one")
    guard case .handTo(let next) = m.release(c) else {
      Issue.record("then the second")
      return
    }
    #expect(next.requester == "two")
    guard case .close = m.release(c) else {
      Issue.record("no waiter, maxIdle 0: closed")
      return
    }
  }

  @Test("A closed connection or a failed connect frees a slot for the first waiter; an expired waiter leaves the queue once")
  func slotsAndExpiry() {
    var m = Machine(maxConnections: 1, maxQueue: 4, maxIdle: 4)
    _ = m.acquire(fresh: false, isUsable: Self.usable)
    let w1 = waitID(m.acquire(fresh: false, isUsable: Self.usable))!
    m.waiting(.init(id: w1, requester: "one", timeout: nil))
    let w2 = waitID(m.acquire(fresh: false, isUsable: Self.usable))!
    m.waiting(.init(id: w2, requester: "two", timeout: nil))
    #expect(m.waiterToConnect() == nil)  // the slot is still connecting
    m.connectFailed()
    let served = m.waiterToConnect()
    #expect(served?.requester == "one")
    #expect(m.connecting == 1)
    m.connected()
    let conn = Conn()
    #expect(m.expire(w2)?.requester == "two")
    #expect(m.expire(w2) == nil)
    m.closed(conn)
    #expect(m.open == 0)
    #expect(m.waiterToConnect() == nil)  // nobody waits
  }

  @Test("A closed idle connection leaves the idle stack; shutdown takes every idle one")
  func closedIdle() {
    var m = Machine(maxConnections: 4, maxQueue: 4, maxIdle: 4)
    let a = Conn(), b = Conn()
    for _ in 0..<2 { _ = m.acquire(fresh: false, isUsable: Self.usable); m.connected() }
    _ = m.release(a)
    _ = m.release(b)
    m.closed(a)
    #expect(m.idle.count == 1 && m.open == 1)
    let taken = m.takeIdle()
    #expect(taken.count == 1 && taken[0] === b && m.idle.isEmpty)
  }
}
