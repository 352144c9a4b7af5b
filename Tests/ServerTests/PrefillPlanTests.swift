import Server
import Testing

/// Which waiting prompts the engine prefills before a step: the first always, then every one
/// whose next chunk still fits in one chunk's worth of tokens, in arrival order.
struct PrefillPlanTests {
    @Test func promptsThatArriveTogetherArePrefilledTogether() {
        #expect(InferenceEngine.rowsToPrefill(nextChunks: [12, 12, 12, 12, 12, 12, 12, 12], budget: 256) == Array(0..<8))
        #expect(InferenceEngine.rowsToPrefill(nextChunks: [], budget: 256) == [])
    }

    @Test func noStepWaitsForMoreThanOneChunk() {
        // A full chunk takes the whole budget.
        #expect(InferenceEngine.rowsToPrefill(nextChunks: [256, 12], budget: 256) == [0])
        // A chunk that no longer fits waits; a shorter one after it still goes.
        #expect(InferenceEngine.rowsToPrefill(nextChunks: [12, 250, 12, 300], budget: 256) == [0, 2])
        // The first waiting prompt always goes, even past the budget, so nothing starves.
        #expect(InferenceEngine.rowsToPrefill(nextChunks: [300, 1], budget: 256) == [0])
    }
}
