import Foundation
import Inference
import Prometheus
import Synchronization

/// The Prometheus series `/metrics` exposes. Per-model series are labelled with the adapter id
/// (registered names only, so the label set stays bounded).
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let timeToFirstToken: DurationHistogram
    private let interTokenLatency: DurationHistogram
    private let batchSize: ValueHistogram
    private let queueDepth: Gauge
    private let running: Gauge
    private let cacheBytes: Gauge
    private let cacheLoaded: Gauge
    private let cacheCounters: (hits: Counter, misses: Counter, evictions: Counter)
    private let cacheSeen = Mutex(AdapterCache.Statistics())

    init() {
        let latencyBuckets: [Duration] = [.milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                                          .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10)]
        timeToFirstToken = registry.makeDurationHistogram(
            descriptor: Self.name("time_to_first_token", "seconds", "Time from a request's arrival to its first generated text"), buckets: latencyBuckets)
        interTokenLatency = registry.makeDurationHistogram(
            descriptor: Self.name("inter_token_latency", "seconds", "Time between consecutive pieces of generated text"), buckets: latencyBuckets)
        batchSize = registry.makeValueHistogram(
            descriptor: Self.name("batch_size", "", "Rows per batched decode step"), buckets: [1, 2, 3, 4, 6, 8, 12, 16, 32])
        queueDepth = registry.makeGauge(descriptor: Self.name("queue_depth", "", "Requests waiting for a batch slot"))
        running = registry.makeGauge(descriptor: Self.name("running", "requests", "Requests in the batch"))
        cacheBytes = registry.makeGauge(descriptor: Self.name("adapter_cache", "bytes", "Bytes of adapters held in memory"))
        cacheLoaded = registry.makeGauge(descriptor: Self.name("adapter_cache", "adapters", "Adapters held in memory"))
        cacheCounters = (
            registry.makeCounter(descriptor: Self.name("adapter_cache_hits", "total", "Adapter lookups served from memory")),
            registry.makeCounter(descriptor: Self.name("adapter_cache_misses", "total", "Adapter lookups that read files")),
            registry.makeCounter(descriptor: Self.name("adapter_cache_evictions", "total", "Adapters dropped from memory"))
        )
    }

    func request(status: Int, model: String) {
        registry.makeCounter(
            descriptor: Self.name("requests", "total", "Requests by HTTP status and model"), labels: [("status", String(status)), ("model", model)]
        ).increment()
    }

    func tokens(prompt: Int, generated: Int, model: String) {
        registry.makeCounter(descriptor: Self.name("prompt_tokens", "total", "Prompt tokens"), labels: [("model", model)])
            .increment(by: Int64(prompt))
        registry.makeCounter(descriptor: Self.name("generated_tokens", "total", "Generated tokens"), labels: [("model", model)])
            .increment(by: Int64(generated))
    }

    /// `lora_METRIC_UNIT` (an empty unit is left out).
    private static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "lora", metricName: metric, unitName: unit, helpText: help)
    }

    func firstToken(after duration: Duration) { timeToFirstToken.record(duration) }
    func nextToken(after duration: Duration) { interTokenLatency.record(duration) }
    func step(rows: Int) { batchSize.record(Double(rows)) }

    /// The exposition text, with the sampled gauges brought up to date first.
    func render(load: InferenceEngine.Load, cache: AdapterCache.Statistics) -> String {
        queueDepth.set(Double(load.waiting))
        running.set(Double(load.running))
        cacheBytes.set(Double(cache.bytes))
        cacheLoaded.set(Double(cache.count))
        let previous = cacheSeen.withLock { seen in
            defer { seen = cache }
            return seen
        }
        cacheCounters.hits.increment(by: Int64(max(0, cache.hits - previous.hits)))
        cacheCounters.misses.increment(by: Int64(max(0, cache.misses - previous.misses)))
        cacheCounters.evictions.increment(by: Int64(max(0, cache.evictions - previous.evictions)))
        return registry.emitToString()
    }
}
