import Inference
import Models
import Server
import TestSupport
import Testing

/// Which waiting prompts the engine prefills before a step: the least remaining first (a prompt
/// passed over too often goes first), then every one whose next chunk still fits in one chunk's
/// worth of tokens.
struct PrefillPlanTests {
    typealias Candidate = InferenceEngine.PrefillCandidate

    static func plan(_ chunks: [Int], budget: Int = 256) -> [Int] {
        InferenceEngine.rowsToPrefill(chunks.map { Candidate(nextChunk: $0, remaining: $0) }, budget: budget)
    }

    @Test func promptsThatArriveTogetherArePrefilledTogether() {
        #expect(Self.plan([12, 12, 12, 12, 12, 12, 12, 12]) == Array(0..<8))
        #expect(Self.plan([]) == [])
    }

    @Test func noStepWaitsForMoreThanOneChunk() {
        // A full chunk takes the whole budget.
        #expect(Self.plan([256, 256]) == [0])
        // A chunk that no longer fits waits; a shorter one still goes.
        #expect(Self.plan([12, 250, 12, 300]) == [0, 2])
        // One prompt always goes, even past the budget.
        #expect(Self.plan([300]) == [0])
    }

    @Test func shortRequestsGoBeforeLongPromptsWithoutStarvingThem() {
        // A 3,000-token prompt is prefilling; a 20-token request arrives: it goes at the next step.
        let long = Candidate(nextChunk: 256, remaining: 2_744), short = Candidate(nextChunk: 20, remaining: 20)
        #expect(InferenceEngine.rowsToPrefill([long, short], budget: 256) == [1])
        // Two long prompts: the one nearer its end first.
        #expect(InferenceEngine.rowsToPrefill([long, Candidate(nextChunk: 256, remaining: 512)], budget: 256) == [1])
        // Passed over four steps in a row, the long prompt goes first, and short ones fill what is left.
        var starved = long
        starved.passedOver = 4
        #expect(InferenceEngine.rowsToPrefill([starved, short], budget: 256) == [0])
        #expect(InferenceEngine.rowsToPrefill([Candidate(nextChunk: 200, remaining: 3_000, passedOver: 4), short], budget: 256) == [0, 1])

        // Simulated: short requests keep arriving every step; the long prompt still finishes.
        var remaining = 3_000, passedOver = 0, steps = 0
        while remaining > 0 && steps < 100 {
            let chunk = remaining <= 256 ? remaining : 256
            let plan = InferenceEngine.rowsToPrefill([Candidate(nextChunk: chunk, remaining: remaining, passedOver: passedOver), short], budget: 256)
            if plan.contains(0) {
                remaining -= chunk
                passedOver = 0
            } else {
                passedOver += 1
            }
            steps += 1
        }
        #expect(remaining == 0 && steps <= 12 * 5, "\(steps) steps")
    }
}

/// How a prompt is split: by cost, the same way whatever else waits.
struct PrefillChunkTests {
    @Test func chunksShortenWhereTokensCostMoreAndCoverThePrompt() throws {
        let config = try LanguageModel.load(path: Fixtures.modelPath).model.config
        func length(_ position: Int, _ remaining: Int = 100_000, budget: Int = 256) -> Int {
            InferenceEngine.chunkLength(at: position, remaining: remaining, budget: budget, config: config)
        }
        // A prompt up to the budget is one piece, as Generator runs it.
        #expect(length(0, 256) == 256 && length(0, 100, budget: 100) == 100 && length(0) == 256)
        let lengths = [256, 1_024, 3_000, 6_000].map { length($0) }
        #expect(zip(lengths, lengths.dropFirst()).allSatisfy { $0 >= $1 } && lengths[2] < 256, "\(lengths)")
        #expect(lengths.allSatisfy { $0 % 16 == 0 && $0 >= 2 * LlamaModel.quantizedRowLimit })
        // The rest in one piece once it fits.
        #expect(length(2_900, 40) == 40)
        // Chunks tile the prompt exactly.
        var position = 0
        while position < 3_000 { position += length(position, 3_000 - position) }
        #expect(position == 3_000)
    }
}
