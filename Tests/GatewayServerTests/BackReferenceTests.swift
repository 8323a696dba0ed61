import NIOCore
import NIOEmbedded
import Testing

@testable import GatewayUpstream

@Suite("BackReference: reaching an object without a weak reference to it")
struct BackReferenceTests {
  final class Ticker: Expirable {
    var sweeps = 0
    lazy var backReference = BackReference(self)
    func checkDeadlines(now: NIODeadline) { sweeps += 1 }
  }

  @Test("The sweeper reaches its owner through the stand-in, and forgets it once the owner is gone")
  func sweeperThroughStandIn() {
    let sweeper = DeadlineSweeper(eventLoop: EmbeddedEventLoop())
    var owner: Ticker? = Ticker()
    sweeper.register(owner!.backReference)
    sweeper.sweepNow()
    sweeper.sweepNow()
    #expect(owner?.sweeps == 2)

    weak let standIn = owner!.backReference
    owner = nil
    // The owner held the only strong reference: the stand-in died with it, so a sweep finds
    // nothing to call (an `unowned` read of a dead owner would have trapped here).
    #expect(standIn == nil)
    sweeper.sweepNow()
  }

  @Test("A weak holder of the stand-in sees nil after the owner is released, never a dangling owner")
  func weakHolder() {
    var owner: Ticker? = Ticker()
    weak let holder = owner!.backReference
    holder?.target.checkDeadlines(now: .now())
    #expect(owner?.sweeps == 1)
    owner = nil
    #expect(holder == nil)
    #expect(holder?.target.sweeps == nil)
  }
}
