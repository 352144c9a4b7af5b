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
            name: "lora_time_to_first_token_seconds", buckets: latencyBuckets, help: "Time from a request's arrival to its first generated text")
        interTokenLatency = registry.makeDurationHistogram(
            name: "lora_inter_token_latency_seconds", buckets: latencyBuckets, help: "Time between consecutive pieces of generated text")
        batchSize = registry.makeValueHistogram(
            name: "lora_batch_size", buckets: [1, 2, 3, 4, 6, 8, 12, 16, 32], help: "Rows per batched decode step")
        queueDepth = registry.makeGauge(name: "lora_queue_depth", help: "Requests waiting for a batch slot")
        running = registry.makeGauge(name: "lora_running_requests", help: "Requests in the batch")
        cacheBytes = registry.makeGauge(name: "lora_adapter_cache_bytes", help: "Bytes of adapters held in memory")
        cacheLoaded = registry.makeGauge(name: "lora_adapter_cache_adapters", help: "Adapters held in memory")
        cacheCounters = (
            registry.makeCounter(name: "lora_adapter_cache_hits_total", help: "Adapter lookups served from memory"),
            registry.makeCounter(name: "lora_adapter_cache_misses_total", help: "Adapter lookups that read files"),
            registry.makeCounter(name: "lora_adapter_cache_evictions_total", help: "Adapters dropped from memory")
        )
    }

    func request(status: Int, model: String) {
        registry.makeCounter(
            name: "lora_requests_total", labels: [("status", String(status)), ("model", model)], help: "Requests by HTTP status and model"
        ).increment()
    }

    func tokens(prompt: Int, generated: Int, model: String) {
        registry.makeCounter(name: "lora_prompt_tokens_total", labels: [("model", model)], help: "Prompt tokens").increment(by: Int64(prompt))
        registry.makeCounter(name: "lora_generated_tokens_total", labels: [("model", model)], help: "Generated tokens").increment(by: Int64(generated))
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
