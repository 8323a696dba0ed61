import NIOCore

/// One endpoint's connection pool on one event loop, as a value: the idle stack, the open and
/// connecting counts, the bounded FIFO of requests waiting for a connection. ``UpstreamPool``
/// reports events (a lease asked for, a connect done or failed, a connection released or closed,
/// a wait expired) and carries out what it returns: connect, hand a connection over, close one,
/// arm or cancel a waiter's timer, fail a request. Tested in `UpstreamPoolStateMachineTests`.
///
/// Idle connections are a stack (the most recently used first: its socket and TLS state are warm);
/// above `maxIdle` a released connection is closed rather than kept.
struct UpstreamPoolStateMachine<Connection: AnyObject, Requester> {
  struct Waiter {
    let id: Int
    let requester: Requester
    /// Its queue deadline, cancelled when it is served (nil in tests).
    var timeout: Scheduled<Void>?
  }

  /// What a lease asks the pool to do.
  enum Acquire {
    /// An idle connection, at once.
    case lease(Connection)
    /// Open a new connection for the requester.
    case connect
    /// The pool is full: the requester waits (arm its timer, then ``waiting(_:timeout:)``).
    case wait(id: Int)
    /// The pool is full and so is its queue.
    case fail
  }

  /// What a released connection is for.
  enum Release {
    /// The first waiter takes it (cancel its timer).
    case handTo(Waiter)
    /// Kept idle for the next request.
    case keep
    /// Idle connections are at `maxIdle`: close it.
    case close
  }

  let maxConnections: Int
  let maxQueue: Int
  let maxIdle: Int
  private(set) var idle: [Connection] = []
  private(set) var open = 0
  private(set) var connecting = 0
  private(set) var waiters = CircularBuffer<Waiter>()
  private var nextWaiterID = 0

  init(maxConnections: Int, maxQueue: Int, maxIdle: Int) {
    self.maxConnections = maxConnections
    self.maxQueue = maxQueue
    self.maxIdle = maxIdle
  }

  /// Requests holding or waiting for a connection (least-request balancing).
  var inFlight: Int { open - idle.count + connecting + waiters.count }

  private var hasRoom: Bool { open + connecting < maxConnections }

  /// A request wants a connection. `fresh`: never an idle one (a retry after a stale keep-alive
  /// connection). `isUsable`: whether an idle connection is still open (the upstream may have
  /// closed it while it sat idle; such a one is dropped here, and its close arrives later).
  mutating func acquire(fresh: Bool, isUsable: (Connection) -> Bool) -> Acquire {
    if !fresh {
      while let conn = idle.popLast() {
        if isUsable(conn) { return .lease(conn) }
      }
    }
    if hasRoom {
      connecting += 1
      return .connect
    }
    guard waiters.count < maxQueue else { return .fail }
    let id = nextWaiterID
    nextWaiterID += 1
    return .wait(id: id)
  }

  /// The requester of a ``Acquire/wait(id:)`` joins the queue with its timer.
  mutating func waiting(_ waiter: Waiter) {
    waiters.append(waiter)
  }

  /// A waiter's deadline passed: it leaves the queue (and its request fails). nil: already served.
  mutating func expire(_ id: Int) -> Waiter? {
    guard let i = waiters.firstIndex(where: { $0.id == id }) else { return nil }
    return waiters.remove(at: i)
  }

  /// A connect finished with a connection: it is open, and goes to the one who asked for it.
  mutating func connected() {
    connecting -= 1
    open += 1
  }

  /// A connect failed: the slot it held is free (``waiterToConnect()`` may hand it on).
  mutating func connectFailed() {
    connecting -= 1
  }

  /// A cleanly framed exchange gave its connection back.
  mutating func release(_ conn: Connection) -> Release {
    if let w = waiters.popFirst() { return .handTo(w) }
    if idle.count >= maxIdle { return .close }
    idle.append(conn)
    return .keep
  }

  /// A connection closed, idle or busy: its slot is free (``waiterToConnect()`` may hand it on).
  mutating func closed(_ conn: Connection) {
    if let i = idle.firstIndex(where: { $0 === conn }) { idle.remove(at: i) }
    open -= 1
  }

  /// Every idle connection, taken out to be closed (shutdown).
  mutating func takeIdle() -> [Connection] {
    defer { idle.removeAll() }
    return idle
  }

  /// With a slot free, the first waiter leaves the queue to get a connect of its own (cancel its
  /// timer, then connect for it).
  mutating func waiterToConnect() -> Waiter? {
    guard !waiters.isEmpty, hasRoom else { return nil }
    connecting += 1
    return waiters.removeFirst()
  }
}
