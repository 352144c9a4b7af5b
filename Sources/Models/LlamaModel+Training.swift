import Kernels

/// Sequences laid end to end: B padded rows of T tokens, or examples packed without padding.
/// `targets[i]` is the token position i must predict (the next token), or -100 where no loss is
/// taken (prompt, padding, the last position of a sequence).
public struct TrainingBatch: Sendable, Equatable {
    public let tokens: [Int]
    public let targets: [Int]
    /// Each sequence's positions in `tokens`, in order and covering it: attention stays within a
    /// sequence and positions restart at each.
    public let sequences: [Range<Int>]
    /// Tokens that are not padding.
    public let realTokens: Int

    public init(tokens: [Int], targets: [Int], sequences: [Range<Int>], realTokens: Int? = nil) {
        precondition(targets.count == tokens.count && sequences.first?.lowerBound ?? 0 == 0 && sequences.last?.upperBound ?? 0 == tokens.count)
        precondition(zip(sequences, sequences.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
        self.tokens = tokens
        self.targets = targets
        self.sequences = sequences
        self.realTokens = realTokens ?? tokens.count
    }

    /// B rows of `length` tokens.
    public init(tokens: [Int], targets: [Int], batchSize: Int, length: Int, realTokens: Int? = nil) {
        precondition(tokens.count == batchSize * length)
        self.init(tokens: tokens, targets: targets, sequences: (0..<batchSize).map { ($0 * length)..<(($0 + 1) * length) }, realTokens: realTokens)
    }

    public var batchSize: Int { sequences.count }

    /// Each token's position within its sequence.
    var positions: [Int] { sequences.flatMap { range in range.indices.map { $0 - range.lowerBound } } }

    /// From Hugging Face's convention, `labels` aligned with `input_ids` (shifted inside the loss).
    public init(inputIds: [[Int]], labels: [[Int]]) {
        let length = inputIds.first?.count ?? 0
        self.init(
            tokens: inputIds.flatMap { $0 },
            targets: labels.flatMap { Array($0.dropFirst()) + [CrossEntropy.ignoreIndex] },
            batchSize: inputIds.count, length: length)
    }

    /// Positions that contribute to the loss.
    public var scoredCount: Int { targets.count { $0 != CrossEntropy.ignoreIndex } }
}

extension LlamaModel {
    /// Rows of the head processed at once: bounds the logits buffer to chunk × V floats instead
    /// of N × V (200 MB for 4 × 256 tokens with SmolLM2's vocabulary). Each chunk streams the
    /// whole [V, C] head through both GEMMs, so fewer chunks read it fewer times: in C, a
    /// 1,024-row step's head GEMMs took 0.71–0.73 s in chunks of 128 rows, 0.66 in 256, 0.62–0.63 in 512.
    public static let headChunk = 512

    /// Forward and backward over a batch with LoRA adapters on a frozen base.
    /// Returns Σ cross-entropy over scored positions; adds d(Σ · gradientScale)/d(A, B) into
    /// `gradients` (same layout as `adapters`). No gradient of a base weight is ever formed.
    /// With `checkpointing`, only each layer's input is kept and the backward recomputes the
    /// layer's forward: about a third more compute for a fraction of the activation memory.
    /// `scratch`: buffers to reuse across steps (a training loop keeps one).
    public func lossAndGradients(
        _ batch: TrainingBatch, adapters: [LayerAdapters], gradients: inout [LayerAdapters], gradientScale: Float,
        dropout: Float = 0, seed: UInt64 = 0, checkpointing: Bool = false, scratch: TrainingScratch = TrainingScratch()
    ) throws(ModelError) -> Double {
        try checkTokens(batch.tokens)
        try checkAdapters(adapters)
        let saved = TrainingActivations(
            dropout: dropout > 0 ? LoRADropout(probability: dropout, seed: seed) : nil, checkpointed: checkpointing)
        var hidden = trainingForward(batch, adapters: adapters, saved: saved)
        let (loss, dHidden) = headLossAndGradient(
            &hidden, targets: batch.targets, gradientScale: gradientScale, backward: true, scratch: scratch)
        trainingBackward(batch, dHidden: dHidden, adapters: adapters, saved: saved, gradients: &gradients)
        return loss
    }

    /// Σ cross-entropy over scored positions, forward only (validation).
    public func loss(_ batch: TrainingBatch, adapters: [LayerAdapters]?, scratch: TrainingScratch = TrainingScratch()) throws(ModelError) -> Double {
        try checkTokens(batch.tokens)
        try checkAdapters(adapters)
        var hidden = trainingForward(batch, adapters: adapters, saved: nil)
        return headLossAndGradient(&hidden, targets: batch.targets, gradientScale: 0, backward: false, scratch: scratch).loss
    }

    // MARK: - Forward

    /// Runs the decoder over B independent sequences; returns the final residual stream [N, C]
    /// (before the output norm, which `headLossAndGradient` applies).
    func trainingForward(_ batch: TrainingBatch, adapters: [LayerAdapters]?, saved: TrainingActivations?) -> [Float] {
        var residual = embed(batch.tokens)
        runTrainingLayers(&residual, batch, adapters: adapters, saved: saved, layers: nil)
        return residual
    }

    /// The decoder over B sequences, each attending only to itself.
    func runTrainingLayers(
        _ residual: inout [Float], _ batch: TrainingBatch, adapters: [LayerAdapters]?, saved: TrainingActivations?, layers: Range<Int>?
    ) {
        let config = config
        let H = config.numAttentionHeads, Hkv = config.numKeyValueHeads, D = config.headDim
        let sequences = batch.sequences
        runLayers(&residual, rows: batch.tokens.count, positions: batch.positions, adapters: .shared(adapters), saving: saved, layers: layers) {
            _, saved, k, v, attnOut, q in
            var probabilities = [Float](repeating: 0, count: Attention.probabilityCount(sequences, H: H))
            Attention.forward(ranges: sequences, q: q, k: k, v: v, out: &attnOut, probabilities: &probabilities, H: H, Hkv: Hkv, D: D)
            saved?.pendingProbabilities = probabilities
        }
    }

    /// Layer `l`'s activations: kept from the forward, or recomputed from its input.
    func activations(of l: Int, _ batch: TrainingBatch, adapters: [LayerAdapters], saved: TrainingActivations) -> LayerActivations {
        guard saved.checkpointed else { return saved.layers[l] }
        let recomputed = TrainingActivations(dropout: saved.dropout)
        var residual = saved.inputs[l]
        runTrainingLayers(&residual, batch, adapters: adapters, saved: recomputed, layers: l..<(l + 1))
        return recomputed.layers[0]
    }

    /// Output norm, head and cross-entropy in row chunks. With `backward`, returns the gradient
    /// of Σ loss · gradientScale with respect to the final residual stream.
    func headLossAndGradient(
        _ hidden: inout [Float], targets: [Int], gradientScale: Float, backward: Bool, scratch: TrainingScratch
    ) -> (loss: Double, dHidden: [Float]) {
        let C = config.hiddenSize, V = config.vocabSize
        let N = targets.count
        var normed = [Float](repeating: 0, count: N * C)
        var rstd = [Float](repeating: 0, count: N)
        RMSNorm.forward(hidden, weight: weights.outputNorm, out: &normed, rstd: &rstd, T: N, C: C, eps: config.rmsNormEps)
        // Only positions with a target reach the head: prompt and padding rows have no loss and
        // no gradient, and in chat data they are most rows (the head is a fifth of the model's FLOPs).
        let scored = targets.indices.filter { targets[$0] != CrossEntropy.ignoreIndex }
        let S = scored.count
        var scoredNormed = [Float].uninitialized(S * C)
        normed.withUnsafeBufferPointer { normed in
            scoredNormed.withUnsafeMutableBufferPointer { rows in
                for (i, row) in scored.enumerated() { (rows.baseAddress! + i * C).update(from: normed.baseAddress! + row * C, count: C) }
            }
        }
        let scoredTargets = scored.map { targets[$0] }
        var dScored = [Float](repeating: 0, count: backward ? S * C : 0)
        let logits = scratch.logits(count: min(S, Self.headChunk) * V)
        var loss: Double = 0
        let head = weights.head
        for start in stride(from: 0, to: S, by: Self.headChunk) {
            let rows = min(Self.headChunk, S - start)
            scoredNormed.withUnsafeBufferPointer { x in
                MatMul.forward(x.baseAddress! + start * C, head, logits, T: rows, K: C, N: V)
            }
            loss += scoredTargets.withUnsafeBufferPointer { t in
                CrossEntropy.forwardBackward(logits: logits, targets: t.baseAddress! + start, T: rows, V: V, gradientScale: gradientScale)
            }
            if backward {
                dScored.withUnsafeMutableBufferPointer { d in
                    MatMul.backward(logits, head, d.baseAddress! + start * C, T: rows, K: C, N: V)
                }
            }
        }
        var dNormed = [Float](repeating: 0, count: backward ? N * C : 0)
        if backward {
            for (i, row) in scored.enumerated() { dNormed[(row * C)..<((row + 1) * C)] = dScored[(i * C)..<((i + 1) * C)] }
        }
        guard backward else { return (loss, []) }
        var dHidden = [Float](repeating: 0, count: N * C)
        RMSNorm.backward(dOut: dNormed, x: hidden, weight: weights.outputNorm, rstd: rstd, dX: &dHidden, T: N, C: C)
        return (loss, dHidden)
    }

    // MARK: - Backward

    /// Walks the layers in reverse, from the gradient of the final residual stream, adding LoRA
    /// gradients into `gradients`. Layer 0's input gradient would only reach the frozen
    /// embedding, so it is not computed.
    func trainingBackward(
        _ batch: TrainingBatch, dHidden: [Float], adapters: [LayerAdapters], saved: TrainingActivations,
        gradients: inout [LayerAdapters]
    ) {
        let config = config
        let N = batch.tokens.count
        let C = config.hiddenSize, F = config.intermediateSize
        let H = config.numAttentionHeads, Hkv = config.numKeyValueHeads, D = config.headDim
        let positions = batch.positions
        var dResidual = dHidden
        var dSwiglu = [Float](repeating: 0, count: N * F)
        var dGate = dSwiglu, dUp = dSwiglu
        var dFfnNorm = [Float](repeating: 0, count: N * C)
        var dAttnNorm = dFfnNorm
        var dAttnOut = [Float](repeating: 0, count: N * H * D)
        var dQ = dAttnOut
        var dK = [Float](repeating: 0, count: N * Hkv * D)
        var dV = dK

        for l in stride(from: weights.layers.count - 1, through: 0, by: -1) {
            let layer = weights.layers[l]
            let act = activations(of: l, batch, adapters: adapters, saved: saved)
            let adapter = adapters[l]
            var grads = gradients[l]
            defer { gradients[l] = grads }
            /// `first`: dX is overwritten (no zeroing pass) instead of accumulated into.
            func linearBackward(
                _ tensor: LayerTensor, dY: [Float], x: [Float], dX: inout [Float], inputGradient: Bool, first: Bool = false, K: Int, N out: Int
            ) {
                func base(accumulate: Bool) {
                    if inputGradient { MatMul.backward(dY, layer[tensor], &dX, T: N, K: K, N: out, accumulate: accumulate) }
                }
                guard let pair = adapter[tensor], var g = grads[tensor], let u = act.lora.u[tensor.index] else {
                    base(accumulate: !first)
                    return
                }
                defer { grads[tensor] = g }
                /// LoRA's dA, dB, and its dU·A term written into `target` (added when `accumulate`).
                func lowRank(input: [Float], target: inout [Float], gradient: inout LowRankPair, accumulate: Bool) {
                    var dU = [Float](repeating: 0, count: N * pair.rank)
                    target.withUnsafeMutableBufferPointer { target in
                        LowRank.backward(
                            dY: dY, x: input, u: u, a: pair.a, b: pair.b, scale: pair.scale, dA: &gradient.a, dB: &gradient.b,
                            dX: inputGradient ? target.baseAddress : nil, dU: &dU, T: N, K: K, N: out, R: pair.rank, accumulate: accumulate)
                    }
                }
                guard let mask = act.lora.masks[tensor.index] else {
                    // LoRA's term first: sgemm then adds the base term for free, where writing it
                    // first would cost sgemm a pass zeroing dX and LoRA a pass adding into it.
                    lowRank(input: x, target: &dX, gradient: &g, accumulate: !first)
                    base(accumulate: true)
                    return
                }
                // Dropout: A saw x ⊙ mask, so its gradient flows back through the same mask.
                base(accumulate: !first)
                var input = x
                for i in input.indices { input[i] *= mask[i] }
                var dInput = [Float].uninitialized(inputGradient ? N * K : 0)
                lowRank(input: input, target: &dInput, gradient: &g, accumulate: false)
                if inputGradient {
                    for i in dX.indices { dX[i] += dInput[i] * mask[i] }
                }
            }

            // MLP block, from the layer output back to the residual after attention.
            linearBackward(.down, dY: dResidual, x: act.swiglu, dX: &dSwiglu, inputGradient: true, first: true, K: F, N: C)
            SwiGLU.backward(dOut: dSwiglu, gate: act.gate, up: act.up, dGate: &dGate, dUp: &dUp, count: N * F)
            linearBackward(.gate, dY: dGate, x: act.ffnNorm, dX: &dFfnNorm, inputGradient: true, first: true, K: C, N: F)
            linearBackward(.up, dY: dUp, x: act.ffnNorm, dX: &dFfnNorm, inputGradient: true, K: C, N: F)
            RMSNorm.backward(dOut: dFfnNorm, x: act.afterAttention, weight: layer[.ffnNorm], rstd: act.ffnRstd, dX: &dResidual, T: N, C: C)

            // Attention block, back to the layer input.
            linearBackward(.o, dY: dResidual, x: act.attnOut, dX: &dAttnOut, inputGradient: true, first: true, K: H * D, N: C)
            dQ.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
            dK.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
            dV.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
            Attention.backward(
                ranges: batch.sequences, dOut: dAttnOut, q: act.q, k: act.k, v: act.v, probabilities: act.probabilities, dQ: &dQ, dK: &dK, dV: &dV,
                H: H, Hkv: Hkv, D: D)
            rope.backward(&dQ, positions: positions, T: N, heads: H)
            rope.backward(&dK, positions: positions, T: N, heads: Hkv)
            let needInput = l > 0
            linearBackward(.q, dY: dQ, x: act.attnNorm, dX: &dAttnNorm, inputGradient: needInput, first: true, K: C, N: H * D)
            linearBackward(.k, dY: dK, x: act.attnNorm, dX: &dAttnNorm, inputGradient: needInput, K: C, N: Hkv * D)
            linearBackward(.v, dY: dV, x: act.attnNorm, dX: &dAttnNorm, inputGradient: needInput, K: C, N: Hkv * D)
            if needInput {
                RMSNorm.backward(dOut: dAttnNorm, x: act.input, weight: layer[.attnNorm], rstd: act.attnRstd, dX: &dResidual, T: N, C: C)
            }
        }
    }
}
