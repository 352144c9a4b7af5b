import Foundation
import Kernels
import Testing
import TestSupport

/// Finite-difference checks of every backward kernel: the scalar is Σ w ⊙ output for a random
/// w, so the analytic input gradient is backward(dOut = w).
struct GradientTests {
    /// Tolerance on the relative difference of directional derivatives (step 1e-2 in Float32).
    static let tolerance = 2e-3

    func expectClose(_ numeric: Double, _ analytic: Double, _ what: String) {
        let difference = FiniteDifference.relativeDifference(numeric, analytic)
        #expect(difference < Self.tolerance, "\(what): numeric \(numeric) analytic \(analytic)")
    }

    @Test func rmsNorm() {
        let T = 3, C = 16
        let x = FiniteDifference.random(T * C, seed: 1), weight = FiniteDifference.random(C, seed: 2)
        let w = FiniteDifference.random(T * C, seed: 3)
        func f(_ x: [Float]) -> Double {
            var out = [Float](repeating: 0, count: T * C)
            RMSNorm.forward(x, weight: weight, out: &out, T: T, C: C, eps: 1e-5)
            return FiniteDifference.weightedSum(out, w)
        }
        var out = [Float](repeating: 0, count: T * C), rstd = [Float](repeating: 0, count: T)
        RMSNorm.forward(x, weight: weight, out: &out, rstd: &rstd, T: T, C: C, eps: 1e-5)
        var dX = [Float](repeating: 0, count: T * C)
        RMSNorm.backward(dOut: w, x: x, weight: weight, rstd: rstd, dX: &dX, T: T, C: C)
        let (numeric, direction) = FiniteDifference.directional(x, seed: 4, f)
        expectClose(numeric, FiniteDifference.dot(dX, direction), "RMSNorm dX")
    }

    @Test func rope() {
        let T = 4, heads = 2, D = 8
        let rope = RoPE(headDim: D, base: 10000)
        let positions = [0, 3, 7, 100]
        let x = FiniteDifference.random(T * heads * D, seed: 5), w = FiniteDifference.random(T * heads * D, seed: 6)
        func f(_ x: [Float]) -> Double {
            var y = x
            rope.forward(&y, positions: positions, T: T, heads: heads)
            return FiniteDifference.weightedSum(y, w)
        }
        var dX = w
        rope.backward(&dX, positions: positions, T: T, heads: heads)
        let (numeric, direction) = FiniteDifference.directional(x, seed: 7, f)
        expectClose(numeric, FiniteDifference.dot(dX, direction), "RoPE dX")
    }

    @Test func swiGLU() {
        let n = 40
        let gate = FiniteDifference.random(n, seed: 8, range: 3), up = FiniteDifference.random(n, seed: 9)
        let w = FiniteDifference.random(n, seed: 10)
        func f(_ gate: [Float], _ up: [Float]) -> Double {
            var out = [Float](repeating: 0, count: n)
            SwiGLU.forward(gate: gate, up: up, out: &out, count: n)
            return FiniteDifference.weightedSum(out, w)
        }
        var dGate = [Float](repeating: 0, count: n), dUp = dGate
        SwiGLU.backward(dOut: w, gate: gate, up: up, dGate: &dGate, dUp: &dUp, count: n)
        let (numericGate, directionGate) = FiniteDifference.directional(gate, seed: 11) { f($0, up) }
        expectClose(numericGate, FiniteDifference.dot(dGate, directionGate), "SwiGLU dGate")
        let (numericUp, directionUp) = FiniteDifference.directional(up, seed: 12) { f(gate, $0) }
        expectClose(numericUp, FiniteDifference.dot(dUp, directionUp), "SwiGLU dUp")
    }

    /// T = 150 spans three causal blocks, the last one partial.
    @Test(arguments: [5, 150])
    func attention(T: Int) {
        let B = 2, H = 4, Hkv = 2, D = 8
        let q = FiniteDifference.random(B * T * H * D, seed: 13), k = FiniteDifference.random(B * T * Hkv * D, seed: 14)
        let v = FiniteDifference.random(B * T * Hkv * D, seed: 15), w = FiniteDifference.random(B * T * H * D, seed: 16)
        func f(_ q: [Float], _ k: [Float], _ v: [Float]) -> Double {
            var out = [Float](repeating: 0, count: B * T * H * D), p = [Float](repeating: 0, count: B * H * T * T)
            Attention.forward(sequences: q, k: k, v: v, out: &out, probabilities: &p, B: B, T: T, H: H, Hkv: Hkv, D: D)
            return FiniteDifference.weightedSum(out, w)
        }
        var out = [Float](repeating: 0, count: B * T * H * D), p = [Float](repeating: 0, count: B * H * T * T)
        Attention.forward(sequences: q, k: k, v: v, out: &out, probabilities: &p, B: B, T: T, H: H, Hkv: Hkv, D: D)
        var dQ = [Float](repeating: 0, count: q.count), dK = [Float](repeating: 0, count: k.count), dV = dK
        Attention.backward(dOut: w, q: q, k: k, v: v, probabilities: p, dQ: &dQ, dK: &dK, dV: &dV, B: B, T: T, H: H, Hkv: Hkv, D: D)
        let (nq, dq) = FiniteDifference.directional(q, seed: 17) { f($0, k, v) }
        expectClose(nq, FiniteDifference.dot(dQ, dq), "attention dQ")
        let (nk, dk) = FiniteDifference.directional(k, seed: 18) { f(q, $0, v) }
        expectClose(nk, FiniteDifference.dot(dK, dk), "attention dK")
        let (nv, dv) = FiniteDifference.directional(v, seed: 19) { f(q, k, $0) }
        expectClose(nv, FiniteDifference.dot(dV, dv), "attention dV")
    }

    /// Sequences of different lengths end to end (a packed batch; 70 spans two causal blocks):
    /// each equals that sequence run alone, and the backward agrees with finite differences.
    @Test func attentionOverPackedSequences() {
        let ranges = [0..<5, 5..<75, 75..<76, 76..<90], N = 90, H = 4, Hkv = 2, D = 8
        let q = FiniteDifference.random(N * H * D, seed: 23), k = FiniteDifference.random(N * Hkv * D, seed: 24)
        let v = FiniteDifference.random(N * Hkv * D, seed: 25), w = FiniteDifference.random(N * H * D, seed: 26)
        func run(_ q: [Float], _ k: [Float], _ v: [Float]) -> (out: [Float], p: [Float]) {
            var out = [Float](repeating: 0, count: N * H * D), p = [Float](repeating: 0, count: Attention.probabilityCount(ranges, H: H))
            Attention.forward(ranges: ranges, q: q, k: k, v: v, out: &out, probabilities: &p, H: H, Hkv: Hkv, D: D)
            return (out, p)
        }
        let (out, p) = run(q, k, v)
        for range in ranges {
            let T = range.count
            var alone = [Float](repeating: 0, count: T * H * D), pAlone = [Float](repeating: 0, count: H * T * T)
            Attention.forward(
                sequences: Array(q[(range.lowerBound * H * D)..<(range.upperBound * H * D)]), k: Array(k[(range.lowerBound * Hkv * D)..<(range.upperBound * Hkv * D)]),
                v: Array(v[(range.lowerBound * Hkv * D)..<(range.upperBound * Hkv * D)]), out: &alone, probabilities: &pAlone, B: 1, T: T, H: H, Hkv: Hkv, D: D)
            #expect(Array(out[(range.lowerBound * H * D)..<(range.upperBound * H * D)]) == alone, "sequence \(range)")
        }
        func f(_ q: [Float], _ k: [Float], _ v: [Float]) -> Double { FiniteDifference.weightedSum(run(q, k, v).out, w) }
        var dQ = [Float](repeating: 0, count: q.count), dK = [Float](repeating: 0, count: k.count), dV = dK
        Attention.backward(ranges: ranges, dOut: w, q: q, k: k, v: v, probabilities: p, dQ: &dQ, dK: &dK, dV: &dV, H: H, Hkv: Hkv, D: D)
        let (nq, dq) = FiniteDifference.directional(q, seed: 27) { f($0, k, v) }
        expectClose(nq, FiniteDifference.dot(dQ, dq), "packed attention dQ")
        let (nk, dk) = FiniteDifference.directional(k, seed: 28) { f(q, $0, v) }
        expectClose(nk, FiniteDifference.dot(dK, dk), "packed attention dK")
        let (nv, dv) = FiniteDifference.directional(v, seed: 29) { f(q, k, $0) }
        expectClose(nv, FiniteDifference.dot(dV, dv), "packed attention dV")
    }

    /// T = 300: three row blocks of `LowRank.block`, the last one partial.
    @Test(arguments: [3, 300])
    func lowRank(T: Int) {
        let K = 12, N = 10, R = 2
        let scale: Float = 1.5
        let x = FiniteDifference.random(T * K, seed: 20), a = FiniteDifference.random(R * K, seed: 21)
        let b = FiniteDifference.random(N * R, seed: 22), w = FiniteDifference.random(T * N, seed: 23)
        func f(_ x: [Float], _ a: [Float], _ b: [Float]) -> Double {
            var y = [Float](repeating: 0, count: T * N), u = [Float](repeating: 0, count: T * R)
            LowRank.forward(x, a: a, b: b, scale: scale, u: &u, y: &y, T: T, K: K, N: N, R: R)
            return FiniteDifference.weightedSum(y, w)
        }
        var y = [Float](repeating: 0, count: T * N), u = [Float](repeating: 0, count: T * R)
        LowRank.forward(x, a: a, b: b, scale: scale, u: &u, y: &y, T: T, K: K, N: N, R: R)
        var dA = [Float](repeating: 0, count: a.count), dB = [Float](repeating: 0, count: b.count)
        var dX = [Float](repeating: 0, count: x.count), dU = [Float](repeating: 0, count: T * R)
        LowRank.backward(dY: w, x: x, u: u, a: a, b: b, scale: scale, dA: &dA, dB: &dB, dX: &dX, dU: &dU, T: T, K: K, N: N, R: R)
        let (nx, dx) = FiniteDifference.directional(x, seed: 24) { f($0, a, b) }
        expectClose(nx, FiniteDifference.dot(dX, dx), "LoRA dX")
        let (na, da) = FiniteDifference.directional(a, seed: 25) { f(x, $0, b) }
        expectClose(na, FiniteDifference.dot(dA, da), "LoRA dA")
        let (nb, db) = FiniteDifference.directional(b, seed: 26) { f(x, a, $0) }
        expectClose(nb, FiniteDifference.dot(dB, db), "LoRA dB")
    }

    @Test func matMulInputGradient() {
        let T = 3, K = 7, N = 5
        let x = FiniteDifference.random(T * K, seed: 27), weight = FiniteDifference.random(N * K, seed: 28)
        let w = FiniteDifference.random(T * N, seed: 29)
        func f(_ x: [Float]) -> Double {
            var y = [Float](repeating: 0, count: T * N)
            MatMul.forward(x, weight, &y, T: T, K: K, N: N)
            return FiniteDifference.weightedSum(y, w)
        }
        var dX = [Float](repeating: 0, count: T * K)
        MatMul.backward(w, weight, &dX, T: T, K: K, N: N)
        let (numeric, direction) = FiniteDifference.directional(x, seed: 30, f)
        expectClose(numeric, FiniteDifference.dot(dX, direction), "MatMul dX")
    }

    @Test func crossEntropy() {
        let T = 4, V = 11
        let logits = FiniteDifference.random(T * V, seed: 31, range: 3)
        let targets = [3, -100, 0, 10]
        func f(_ logits: [Float]) -> Double {
            var copy = logits
            return CrossEntropy.forwardBackward(logits: &copy, targets: targets, T: T, V: V, gradientScale: 1)
        }
        var gradient = logits
        let loss = CrossEntropy.forwardBackward(logits: &gradient, targets: targets, T: T, V: V, gradientScale: 1)
        // The loss itself against log Σ exp − logit in Double.
        var expected = 0.0
        for (t, target) in targets.enumerated() where target >= 0 {
            let row = logits[(t * V)..<((t + 1) * V)].map(Double.init)
            let m = row.max()!
            expected += m + log(row.reduce(0) { $0 + exp($1 - m) }) - row[target]
        }
        #expect(abs(loss - expected) < 1e-5 * abs(expected), "loss \(loss) vs \(expected)")
        let (numeric, direction) = FiniteDifference.directional(logits, seed: 32, f)
        expectClose(numeric, FiniteDifference.dot(gradient, direction), "cross-entropy dLogits")
        #expect(gradient[(V)..<(2 * V)].allSatisfy { $0 == 0 }, "ignored row has no gradient")
    }
}
