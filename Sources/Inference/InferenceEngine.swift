import Foundation
import Models
import Synchronization
import Tokenizers

/// Continuous batching on one loaded base: every running request, each with its own adapter
/// (or none), advances by one token per forward step of the whole batch. Requests join between
/// steps (waiting prompts are prefilled between steps, a chunk each and at most one chunk's worth
/// of tokens in all, shortest first: see `rowsToPrefill`) and leave as soon as they finish or
/// their client goes away.
///
/// The model runs on one dedicated thread, not on Swift's cooperative pool, so the HTTP event
/// loops never wait behind a forward pass. Each request's tokens equal what `Generator.generate`
/// returns for it alone (prompts up to `prefillChunk` tokens are prefilled in one piece, exactly
/// as alone; longer ones in chunks, equal up to float rounding).
public final class InferenceEngine: Sendable {
    public struct Request: Sendable {
        public var prompt: [Int]
        public var maxTokens: Int
        public var sampling: SamplingParameters
        public var adapters: [LayerAdapters]?
        public var stopSequences: [String]
        /// The JSON documents the reply must be (OpenAI's `response_format`), if any.
        public var grammar: JSONGrammar?
        /// With each token, its log-probability and this many likeliest alternatives.
        public var logprobs: Int?

        public init(
            prompt: [Int], maxTokens: Int, sampling: SamplingParameters, adapters: [LayerAdapters]?, stopSequences: [String] = [],
            grammar: JSONGrammar? = nil, logprobs: Int? = nil
        ) {
            self.prompt = prompt
            self.maxTokens = maxTokens
            self.sampling = sampling
            self.adapters = adapters
            self.stopSequences = stopSequences
            self.grammar = grammar
            self.logprobs = logprobs
        }
    }

    public enum FinishReason: String, Sendable {
        /// A stop token or stop sequence.
        case stop
        /// max_tokens or the context length.
        case length
    }

    public enum Event: Sendable, Equatable {
        /// The request left the queue for the batch.
        case started
        /// Text, with the log-probabilities of the tokens it completes when asked for.
        case text(String, [TokenLogprob] = [])
        case finished(FinishReason, promptTokens: Int, completionTokens: Int)
        case failed(String)
    }

    public enum SubmitError: Error, Equatable {
        case queueFull
        case shuttingDown
    }

    public struct Load: Sendable, Equatable {
        public var waiting: Int
        public var running: Int
    }

    public let languageModel: LanguageModel
    public let maxBatch: Int
    public let maxQueue: Int
    public let prefillChunk: Int
    /// Called on the engine thread after every batched decode step with the number of rows.
    private let onStep: @Sendable (Int) -> Void

    private struct Pending: Sendable {
        let request: Request
        let continuation: AsyncStream<Event>.Continuation
        let cancelled: CancelFlag
        /// Times a later request was admitted while this one waited.
        var passedOver = 0
    }

    private struct Shared: Sendable {
        var queue: [Pending] = []
        var running = 0
        var stopping = false
        var stopped = false
    }

    private let shared = Mutex(Shared())
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    public init(languageModel: LanguageModel, maxBatch: Int = 8, maxQueue: Int = 64, prefillChunk: Int = 256, onStep: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.languageModel = languageModel
        self.maxBatch = max(1, maxBatch)
        self.maxQueue = max(0, maxQueue)
        self.prefillChunk = max(1, prefillChunk)
        self.onStep = onStep
        let thread = Thread { [self] in
            run()
            finished.signal()
        }
        thread.name = "lora-inference"
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// A queued request: its events, which end after `.finished` or `.failed`, and a way to
    /// abandon it (a client that went away), which frees its row before the next step.
    public struct Submission: Sendable {
        public let events: AsyncStream<Event>
        let flag: CancelFlag

        public func cancel() { flag.cancel() }

        public var isCancelled: Bool { flag.isCancelled }
    }

    public func submit(_ request: Request) throws(SubmitError) -> Submission {
        let (stream, continuation) = AsyncStream<Event>.makeStream()
        let cancelled = CancelFlag()
        continuation.onTermination = { _ in cancelled.cancel() }
        let error: SubmitError? = shared.withLock { state in
            if state.stopping { return .shuttingDown }
            if state.queue.count >= maxQueue + max(0, maxBatch - state.running) { return .queueFull }
            state.queue.append(Pending(request: request, continuation: continuation, cancelled: cancelled))
            return nil
        }
        if let error { throw error }
        wake.signal()
        return Submission(events: stream, flag: cancelled)
    }

    public var load: Load { shared.withLock { Load(waiting: $0.queue.count, running: $0.running) } }

    /// Stops taking requests, lets every queued and running one finish, then ends the thread.
    public func shutdown() async {
        let alreadyStopped = shared.withLock { state -> Bool in
            defer { state.stopping = true }
            return state.stopped
        }
        wake.signal()
        guard !alreadyStopped else { return }
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async { [finished] in
                finished.wait()
                finished.signal()
                done.resume()
            }
        }
    }

    // MARK: - The engine thread

    /// One request being served; only the engine thread touches it.
    private final class Row {
        let pending: Pending
        let cache: KVCache
        var sequence: SequenceDecoder
        var prefilled = 0
        /// Steps in a row in which other prompts were prefilled and this one waited.
        var passedOver = 0
        /// The step's output for the next token; nil once the row has finished or failed.
        var next: StepOutput?

        init(_ pending: Pending, languageModel: LanguageModel, tokenTrie: () -> TokenTrie) {
            self.pending = pending
            let request = pending.request
            cache = KVCache(config: languageModel.model.config, capacity: min(languageModel.model.config.maxPositionEmbeddings, request.prompt.count + request.maxTokens))
            sequence = SequenceDecoder(
                languageModel: languageModel, maxTokens: request.maxTokens, sampling: request.sampling, stopSequences: request.stopSequences,
                constraint: request.grammar.map { JSONConstraint(grammar: $0, trie: tokenTrie()) }, logprobs: request.logprobs)
        }

        var request: Request { pending.request }
        var isPrefilled: Bool { prefilled == request.prompt.count }
    }

    private func run() {
        var rows: [Row] = []
        // The vocabulary's byte trie, built on the first request with a grammar and kept.
        var tokenTrie: TokenTrie?
        let trie = { () -> TokenTrie in
            if let tokenTrie { return tokenTrie }
            let built = TokenTrie(tokenizer: self.languageModel.tokenizer)
            tokenTrie = built
            return built
        }
        while true {
            let (admitted, stop) = shared.withLock { state -> ([Pending], Bool) in
                // Shortest prompt first, as for prefill: a short request queued behind a long
                // prompt takes the first free slot.
                let order = Self.shortestFirst(state.queue.map { ($0.request.prompt.count, $0.passedOver) })
                let chosen = Set(order.prefix(max(0, maxBatch - rows.count)))
                let taken = state.queue.indices.filter { chosen.contains($0) }.map { state.queue[$0] }
                if !taken.isEmpty {
                    state.queue = state.queue.indices.filter { !chosen.contains($0) }.map { index in
                        var pending = state.queue[index]
                        pending.passedOver += 1
                        return pending
                    }
                }
                state.running = rows.count + taken.count
                if state.stopping && state.queue.isEmpty && rows.isEmpty && taken.isEmpty { state.stopped = true }
                return (taken, state.stopped)
            }
            if stop { return }
            for pending in admitted { pending.continuation.yield(.started) }
            rows += admitted.map { Row($0, languageModel: languageModel, tokenTrie: trie) }
            rows.removeAll { row in
                guard row.pending.cancelled.isCancelled else { return false }
                row.pending.continuation.finish()
                return true
            }
            let running = rows.count
            shared.withLock { $0.running = running }
            if rows.isEmpty {
                wake.wait()
                continue
            }
            // The decoding rows sample and send their next token, waiting prompts are prefilled
            // (short ones together) and send their first token, then one decode step runs for
            // all of them.
            var decoding: [Row] = []
            for row in rows where row.isPrefilled && row.next != nil && advance(row) { decoding.append(row) }
            let waiting = rows.filter { !$0.isPrefilled }
            let plan = Self.rowsToPrefill(
                waiting.map { PrefillCandidate(nextChunk: nextChunk($0).count, remaining: $0.request.prompt.count - $0.prefilled, passedOver: $0.passedOver) },
                budget: prefillChunk)
            for (i, row) in waiting.enumerated() { row.passedOver = plan.contains(i) ? 0 : row.passedOver + 1 }
            let prefilling = plan.map { waiting[$0] }
            prefill(prefilling)
            for row in prefilling where row.isPrefilled && row.next != nil && advance(row) { decoding.append(row) }
            if !decoding.isEmpty {
                do {
                    let next = try languageModel.model.decodeStep(
                        decoding.map { $0.sequence.tokens.last! }, caches: decoding.map(\.cache), adapters: decoding.map(\.request.adapters),
                        greedy: decoding.map { !$0.sequence.needsLogits })
                    for (row, output) in zip(decoding, next) { row.next = output }
                    onStep(decoding.count)
                } catch {
                    for row in decoding { fail(row, "\(error)") }
                }
            }
            rows.removeAll { $0.next == nil && $0.isPrefilled }
        }
    }

    /// A waiting prompt as `rowsToPrefill` sees it.
    public struct PrefillCandidate: Sendable, Equatable {
        /// Tokens in its next chunk.
        public var nextChunk: Int
        /// Prompt tokens not prefilled yet.
        public var remaining: Int
        /// Steps in a row it waited while others were prefilled.
        public var passedOver: Int

        public init(nextChunk: Int, remaining: Int, passedOver: Int = 0) {
            (self.nextChunk, self.remaining, self.passedOver) = (nextChunk, remaining, passedOver)
        }
    }

    /// Which waiting prompts (`candidates`, in arrival order) get their next chunk before a
    /// step: in `shortestFirst` order of their remaining tokens, so a short request behind a
    /// 3,000-token prompt starts at the next step rather than after the long one's chunks. The
    /// first in that order always goes, then every one that still fits in `budget` tokens in all
    /// (one chunk's worth, which bounds how long running streams wait for prefill in any step).
    /// Prompts that arrive together start decoding together.
    public static func rowsToPrefill(_ candidates: [PrefillCandidate], budget: Int) -> [Int] {
        let order = shortestFirst(candidates.map { ($0.remaining, $0.passedOver) })
        var left = budget, chosen: [Int] = []
        for i in order where chosen.isEmpty || candidates[i].nextChunk <= left {
            chosen.append(i)
            left -= candidates[i].nextChunk
        }
        return chosen.sorted()
    }

    /// Indices of `waiting` (in arrival order: tokens left, times passed over) by fewest tokens,
    /// ties in arrival order; but one passed over `maxPassedOver` times goes first, so a long
    /// prompt still advances while short ones keep arriving.
    static let maxPassedOver = 4

    public static func shortestFirst(_ waiting: [(tokens: Int, passedOver: Int)]) -> [Int] {
        waiting.indices.sorted { a, b in
            let (x, y) = (waiting[a], waiting[b])
            let (starvedX, starvedY) = (x.passedOver >= maxPassedOver, y.passedOver >= maxPassedOver)
            if starvedX != starvedY { return starvedX }
            if !starvedX && x.tokens != y.tokens { return x.tokens < y.tokens }
            return a < b
        }
    }

    /// The prompt positions `prefill` runs next.
    private func nextChunk(_ row: Row) -> Range<Int> {
        let length = Self.chunkLength(at: row.prefilled, remaining: row.request.prompt.count - row.prefilled, budget: prefillChunk, config: languageModel.model.config)
        return row.prefilled..<(row.prefilled + length)
    }

    /// The length of a prompt's chunk that starts at `position`: one that costs about what
    /// `budget` tokens cost at the prompt's start, so every step's prefill takes about as long
    /// (a later query attends to more cached keys: 3,000 positions in, a SmolLM2 token costs
    /// twice as much). A multiple of 16, at least `minimumChunk`, and the rest in one piece once
    /// it fits. It depends only on the position, so a prompt is split the same way whatever else
    /// waits, and a prompt of up to `budget` tokens runs in one piece, as `Generator` runs it.
    public static func chunkLength(at position: Int, remaining: Int, budget: Int, config: LlamaConfig) -> Int {
        let d = Double(config.hiddenSize), qkv = Double(config.numAttentionHeads * config.headDim)
        let kv = Double(config.numKeyValueHeads * config.headDim), ffn = Double(config.intermediateSize)
        // FLOPs per token of one layer: its projections, and per cached key its QK and PV products.
        let perToken = 2 * (2 * d * qkv + 2 * d * kv + 3 * d * ffn), perKey = 4 * qkv
        // Cost of t tokens from p: t·perToken + perKey·(t·p + t²/2).
        let b = Double(budget), p = Double(position)
        let allowed = b * perToken + perKey * b * b / 2
        let linear = perToken + perKey * p
        let t = (-linear + (linear * linear + 2 * perKey * allowed).squareRoot()) / perKey
        let length = position == 0 ? budget : max(min(budget, minimumChunk), Int(t) / 16 * 16)
        return remaining <= length ? remaining : length
    }

    /// Shorter chunks would leave the sgemm path for the per-row kernels, which prefill slower.
    static let minimumChunk = 2 * LlamaModel.quantizedRowLimit

    /// Runs each row's next prompt chunk. Short chunks (up to `LlamaModel.quantizedRowLimit`
    /// tokens, a whole short prompt) run together in one pass, each exactly as alone: 8 prompts
    /// of 15 tokens arriving together took 8 passes of 15 rows; longer chunks run one by one.
    private func prefill(_ rows: [Row]) {
        let short = rows.filter { nextChunk($0).count <= LlamaModel.quantizedRowLimit }
        let alone = short.count > 1 ? rows.filter { nextChunk($0).count > LlamaModel.quantizedRowLimit } : rows
        if short.count > 1 {
            let chunks = short.map(nextChunk)
            do {
                let outputs = try languageModel.model.step(
                    zip(short, chunks).map { Array($0.request.prompt[$1]) }, caches: short.map(\.cache), adapters: short.map(\.request.adapters),
                    greedy: short.map { !$0.sequence.needsLogits })
                for (row, (chunk, output)) in zip(short, zip(chunks, outputs)) {
                    row.prefilled = chunk.upperBound
                    if row.isPrefilled { row.next = output }
                }
            } catch {
                // The step checks every row before it changes any cache: run each alone, so
                // that only the rows at fault fail.
                for row in short { prefill(row) }
            }
        }
        for row in alone { prefill(row) }
    }

    private func prefill(_ row: Row) {
        let chunk = nextChunk(row)
        do {
            let output = try languageModel.model.forward(
                Array(row.request.prompt[chunk]), cache: row.cache, adapters: row.request.adapters, greedy: !row.sequence.needsLogits)
            row.prefilled = chunk.upperBound
            if row.isPrefilled { row.next = output }
        } catch {
            row.prefilled = row.request.prompt.count
            fail(row, "\(error)")
        }
    }

    /// Samples the row's next token and emits its text; true if the row goes on decoding.
    /// A finished row's output is cleared, which takes it out of the batch.
    private func advance(_ row: Row) -> Bool {
        guard let next = row.next else { return false }
        if row.pending.cancelled.isCancelled {
            row.next = nil
            row.pending.continuation.finish()
            return false
        }
        let step: SequenceDecoder.Advance
        do {
            step = try row.sequence.advance(next, cacheFull: row.cache.count >= row.cache.capacity)
        } catch {
            fail(row, "\(error)")
            return false
        }
        if !step.text.isEmpty || !step.logprobs.isEmpty { row.pending.continuation.yield(.text(step.text, step.logprobs)) }
        guard let finish = step.finish else { return true }
        let reason: FinishReason = finish == .stopToken || finish == .stopSequence ? .stop : .length
        row.pending.continuation.yield(.finished(reason, promptTokens: row.request.prompt.count, completionTokens: row.sequence.completionTokens))
        row.pending.continuation.finish()
        row.next = nil
        return false
    }

    private func fail(_ row: Row, _ message: String) {
        row.pending.continuation.yield(.failed(message))
        row.pending.continuation.finish()
        row.next = nil
    }
}

/// Set when a request's consumer goes away; read by the engine thread between steps.
final class CancelFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func cancel() { flag.store(true, ordering: .relaxed) }
    var isCancelled: Bool { flag.load(ordering: .relaxed) }
}
