import NIOCore

/// A stand-in for an object that others must reach without keeping it alive: they hold the
/// stand-in `weak`ly, and reach the object through ``target``.
///
/// Why not `weak` on the object itself: the first weak reference to a Swift object gives it a
/// side table, and from then on every retain and release of that object takes the runtime's slow
/// path (`incrementSlow`/`doDecrementSlow`, ~3.5 % of a loaded gateway's CPU in a profile). Channel
/// handlers and channels are retained and released many times per request by NIO's pipeline, so
/// the side table goes on this small object instead, which is only touched when someone calls back.
///
/// Safety: only the owner keeps a strong reference to its stand-in (callers hold it `weak` and
/// only for the length of a call), so a stand-in that can still be loaded means a live owner, and
/// `unowned` never finds a dead one.
public final class BackReference<Target: AnyObject> {
  public unowned let target: Target

  public init(_ target: Target) {
    self.target = target
  }
}

extension BackReference: Expirable where Target: Expirable {
  public func checkDeadlines(now: NIODeadline) {
    target.checkDeadlines(now: now)
  }
}
