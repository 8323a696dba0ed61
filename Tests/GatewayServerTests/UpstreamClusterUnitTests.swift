import NIOCore
import NIOEmbedded
import Testing

@testable import GatewayUpstream

@Suite("Endpoint health and endpoint choice")
struct UpstreamClusterUnitTests {
  @Test("Passive ejection after consecutive failures; re-admitted for a trial after the ejection period")
  func passive() {
    let h = EndpointHealth(name: "a", unhealthyAfter: 3, healthyAfter: 2, activelyChecked: false)
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    h.recordFailure(now: t0)
    h.recordFailure(now: t0)
    #expect(h.isAvailable(now: t0))
    h.recordFailure(now: t0)
    #expect(!h.isAvailable(now: t0))
    #expect(h.state == "ejected")
    #expect(h.isAvailable(now: t0 + .milliseconds(1001)))  // first ejection: 1 s
    h.recordSuccess()
    #expect(h.isHealthy)
    // A success in between resets the count.
    h.recordFailure(now: t0)
    h.recordFailure(now: t0)
    h.recordSuccess()
    h.recordFailure(now: t0)
    #expect(h.isHealthy)
  }

  @Test("Active checks: unhealthy_after failures take it out, healthy_after successes bring it back")
  func active() {
    let h = EndpointHealth(name: "a", unhealthyAfter: 2, healthyAfter: 2, activelyChecked: true)
    let now = NIODeadline.now()
    h.recordCheck(ok: false, now: now)
    #expect(h.isHealthy)
    h.recordCheck(ok: false, now: now)
    #expect(!h.isHealthy)
    #expect(!h.isAvailable(now: now + .seconds(100)))  // only the checker re-admits
    h.recordCheck(ok: true, now: now)
    #expect(!h.isHealthy)
    h.recordCheck(ok: true, now: now)
    #expect(h.isHealthy)
  }

  func cluster(_ n: Int, balancing: ClusterState.Balancing, budget: Int = 20) -> LoopCluster {
    let loop = EmbeddedEventLoop()
    let sweeper = DeadlineSweeper(eventLoop: loop)
    let endpoints = (0..<n).map {
      ClusterState.Endpoint(host: "h\($0)", port: 1, tls: false, health: EndpointHealth(name: "h\($0)", unhealthyAfter: 1, healthyAfter: 1, activelyChecked: true))
    }
    let state = ClusterState(name: "c", endpoints: endpoints, balancing: balancing, retries: 1, retryBudgetPercent: budget, maxConnectionsPerEndpoint: 10, tlsContext: nil)
    let pools = (0..<n).map { i in
      UpstreamPool(settings: UpstreamPoolSettings(host: "h\(i)", port: 1, maxConnections: 1, connectTimeout: .seconds(1), responseTimeout: .seconds(1), queueTimeout: .seconds(1)),
                   eventLoop: loop, sweeper: sweeper)
    }
    return LoopCluster(state: state, pools: pools, sweeper: sweeper)
  }

  @Test("Round robin skips unhealthy endpoints, avoids the failed one on retry, and says nil when all are down")
  func roundRobin() {
    let c = cluster(3, balancing: .roundRobin)
    #expect([c.pick(), c.pick(), c.pick(), c.pick()] == [0, 1, 2, 0])
    c.state.endpoints[1].health.recordCheck(ok: false, now: .now())
    #expect([c.pick(), c.pick(), c.pick()] == [2, 0, 2])
    #expect(c.pick(excluding: 0) == 2)
    c.state.endpoints[0].health.recordCheck(ok: false, now: .now())
    c.state.endpoints[2].health.recordCheck(ok: false, now: .now())
    #expect(c.pick() == nil)
  }

  @Test("Least request (power of two choices) never picks an unhealthy endpoint")
  func leastRequest() {
    let c = cluster(4, balancing: .leastRequest)
    c.state.endpoints[3].health.recordCheck(ok: false, now: .now())
    for _ in 0..<200 { #expect(c.pick() != 3) }
    #expect(c.pick(excluding: 0) != 0)
  }

  @Test("The retry budget caps retries at a share of requests")
  func retryBudget() {
    let c = cluster(2, balancing: .roundRobin, budget: 10)
    var granted = 0
    for _ in 0..<100 {
      c.requestStarted()
      if c.takeRetryToken() { granted += 1 }
    }
    // 3 initial tokens + 10 % of 100 requests.
    #expect(granted >= 10 && granted <= 14, "\(granted)")
  }
}
