import Benchmark
import CoreMetrics
import Dispatch
import GatewayObservability
import Prometheus

/// What one proxied request records on the hot path (docs/operations.md, "Why per-loop counters"):
/// one response counter by status class and two latency histograms (request, upstream).
///
/// Two ways to record it are compared, each alone on one thread and with two threads recording at
/// once (the gateway runs one event loop per core):
/// - per-loop counters (`LoopCounters`, what the gateway does): plain integers owned by one event
///   loop, summed when `/metrics` is scraped;
/// - swift-metrics handles bootstrapped with swift-prometheus 2: a shared atomic per counter and a
///   locked bucket array per histogram.
let benchmarks: @Sendable () -> Void = {
  Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput], maxDuration: .seconds(3))

  let factory = PrometheusMetricsFactory(registry: PrometheusCollectorRegistry())
  MetricsSystem.bootstrap(factory)
  let responses = (1...5).map { CoreMetrics.Counter(label: "tenant_gateway_requests_total", dimensions: [("class", "\($0)xx")]) }
  let requestLatency = CoreMetrics.Timer(label: "tenant_gateway_request_duration_seconds")
  let upstreamLatency = CoreMetrics.Timer(label: "tenant_gateway_upstream_duration_seconds")

  /// A latency that varies like real ones (spread over the buckets).
  @Sendable @inline(__always) func latency(_ i: Int) -> Int64 { Int64(200_000 + (i & 1023) * 9_000) }

  @Sendable @inline(__always) func recordLibrary(_ i: Int) {
    responses[1].increment()
    requestLatency.recordNanoseconds(latency(i))
    upstreamLatency.recordNanoseconds(latency(i) / 2)
  }

  @Sendable @inline(__always) func recordPerLoop(_ c: LoopCounters, _ i: Int) {
    c.recordResponse(status: 200)
    c.requestDuration.observe(nanos: latency(i))
    c.recordUpstreamResponse(cluster: 0, status: 200, nanos: latency(i) / 2)
  }

  Benchmark("metrics per request: per-loop counters, 1 thread", configuration: .init(scalingFactor: .mega)) { benchmark in
    let c = LoopCounters()
    benchmark.startMeasurement()
    for i in benchmark.scaledIterations { recordPerLoop(c, i) }
    blackHole(c.responsesByClass)
  }

  Benchmark("metrics per request: swift-metrics + swift-prometheus, 1 thread", configuration: .init(scalingFactor: .mega)) { benchmark in
    benchmark.startMeasurement()
    for i in benchmark.scaledIterations { recordLibrary(i) }
  }

  // Two threads record at once, as two event loops do: each records half of the iterations.
  Benchmark("metrics per request: per-loop counters, 2 threads", configuration: .init(scalingFactor: .mega)) { benchmark in
    let loops = PerThread([LoopCounters(), LoopCounters()])
    let n = benchmark.scaledIterations.count
    benchmark.startMeasurement()
    DispatchQueue.concurrentPerform(iterations: 2) { t in
      let c = loops.values[t]
      for i in 0..<(n / 2) { recordPerLoop(c, i) }
    }
    blackHole(loops.values[0].responsesByClass)
  }

  Benchmark("metrics per request: swift-metrics + swift-prometheus, 2 threads", configuration: .init(scalingFactor: .mega)) { benchmark in
    let n = benchmark.scaledIterations.count
    benchmark.startMeasurement()
    DispatchQueue.concurrentPerform(iterations: 2) { _ in
      for i in 0..<(n / 2) { recordLibrary(i) }
    }
  }
}

/// Each thread touches only its own element (as each event loop owns its counters).
final class PerThread: @unchecked Sendable {
  let values: [LoopCounters]
  init(_ values: [LoopCounters]) { self.values = values }
}
