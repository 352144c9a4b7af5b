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
    private let endToEnd: DurationHistogram
    private let queueTime: DurationHistogram
    private let promptLength: ValueHistogram
    private let generationLength: ValueHistogram
    private let process: ProcessMetrics

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
        endToEnd = registry.makeDurationHistogram(
            descriptor: Self.name("e2e_request_latency", "seconds", "Time from a request's arrival to its last token"),
            buckets: latencyBuckets + [.seconds(20), .seconds(40), .seconds(80)])
        queueTime = registry.makeDurationHistogram(
            descriptor: Self.name("request_queue_time", "seconds", "Time a request waited for a batch slot"), buckets: latencyBuckets)
        let lengths: [Double] = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]
        promptLength = registry.makeValueHistogram(descriptor: Self.name("request_prompt_tokens", "", "Prompt tokens per request"), buckets: lengths)
        generationLength = registry.makeValueHistogram(
            descriptor: Self.name("request_generation_tokens", "", "Generated tokens per request"), buckets: lengths)
        process = ProcessMetrics(registry: registry)
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
    func queued(for duration: Duration) { queueTime.record(duration) }

    /// A request that ran to its end: latency, lengths, and why it ended (vLLM's
    /// `request_success_total{finished_reason}`).
    func finished(after duration: Duration, prompt: Int, generated: Int, reason: String) {
        endToEnd.record(duration)
        promptLength.record(Double(prompt))
        generationLength.record(Double(generated))
        registry.makeCounter(
            descriptor: Self.name("request_success", "total", "Requests finished, by reason"), labels: [("finished_reason", reason)]
        ).increment()
    }
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
        process.update()
        return registry.emitToString()
    }
}

/// The `process_*` series Prometheus clients export by convention, read from /proc/self when
/// `/metrics` is scraped (left out where there is no /proc).
final class ProcessMetrics: Sendable {
    private let resident: Gauge, virtual: Gauge, openFiles: Gauge, startTime: Gauge, cpu: Gauge

    init(registry: PrometheusCollectorRegistry) {
        func gauge(_ name: String, _ help: String) -> Gauge {
            registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "process", metricName: name, helpText: help))
        }
        resident = gauge("resident_memory_bytes", "Resident memory size in bytes")
        virtual = gauge("virtual_memory_bytes", "Virtual memory size in bytes")
        openFiles = gauge("open_fds", "Open file descriptors")
        startTime = gauge("start_time_seconds", "Start time of the process since the Unix epoch in seconds")
        // A gauge set to the total: the value is what a counter would hold.
        cpu = gauge("cpu_seconds_total", "Total user and system CPU time spent in seconds")
        startTime.set(Date().timeIntervalSince1970 - ProcessInfo.processInfo.systemUptime + Self.startSecondsAfterBoot())
    }

    func update() {
        let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
        if let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) {
            let fields = statm.split(separator: " ").compactMap { Double($0) }
            if fields.count >= 2 {
                virtual.set(fields[0] * pageSize)
                resident.set(fields[1] * pageSize)
            }
        }
        if let descriptors = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            openFiles.set(Double(descriptors.count))
        }
        var usage = rusage()
        if getrusage(RUSAGE_SELF.rawValue, &usage) == 0 {
            cpu.set(Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6)
        }
    }

    /// Field 22 of /proc/self/stat: start time in clock ticks after boot.
    private static func startSecondsAfterBoot() -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let ticks = Double(fields[19]) else { return 0 }
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
