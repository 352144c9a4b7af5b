import Foundation
import Testing

import CKernels
import Kernels

struct MatMulTests {
    @Test(arguments: [(1, 7, 5), (3, 16, 9), (33, 64, 17)])
    func sgemmMatchesTripleLoop(shape: (Int, Int, Int)) {
        let (T, K, N) = shape
        var rng = SeededRandom(seed: 1)
        let x = (0..<(T * K)).map { _ in rng.uniform(-1, 1) }
        let w = (0..<(N * K)).map { _ in rng.uniform(-1, 1) }
        var y = [Float](repeating: 0, count: T * N)
        MatMul.forward(x, w, &y, T: T, K: K, N: N)
        let reference = MatMul.reference(x, w, T: T, K: K, N: N)
        for i in y.indices { #expect(abs(y[i] - reference[i]) < 1e-4) }
        // accumulate adds onto what is there
        MatMul.forward(x, w, &y, T: T, K: K, N: N, accumulate: true)
        for i in y.indices { #expect(abs(y[i] - 2 * reference[i]) < 2e-4) }
    }
}

struct LowRankTests {
    /// Every product of the forward and backward against Double triple loops, over three row
    /// blocks (the last one partial), writing and accumulating outputs, and adding gradients onto
    /// what is already there (gradient accumulation). Running it twice gives the same bits.
    /// The decoding row (T = 1) against Double loops: the eight-rows-at-a-time paths for u and
    /// y with a tail of outputs (K = 32, N = 21, R = 8), two chunks of rank (R = 16), and the
    /// one-at-a-time fallback (K = 19, R = 3). y is added to.
    @Test(arguments: [(32, 21, 8), (40, 16, 16), (19, 13, 3)])
    func decodeRowMatchesTripleLoops(shape: (K: Int, N: Int, R: Int)) {
        let (K, N, R) = shape
        var rng = SeededRandom(seed: UInt64(K * N * R))
        func random(_ count: Int) -> [Float] { (0..<count).map { _ in rng.uniform(-1, 1) } }
        let x = random(K), a = random(R * K), b = random(N * R), y0 = random(N)
        let scale: Float = 0.75
        var u = [Float](repeating: 0, count: R), y = y0
        LowRank.forward(x, a: a, b: b, scale: scale, u: &u, y: &y, T: 1, K: K, N: N, R: R)
        let uExpected = (0..<R).map { r in (0..<K).reduce(0.0) { $0 + Double(x[$1]) * Double(a[r * K + $1]) } }
        for r in 0..<R { #expect(abs(Double(u[r]) - uExpected[r]) <= 1e-5 * max(1, abs(uExpected[r])), "u[\(r)]") }
        for n in 0..<N {
            let expected = Double(y0[n]) + Double(scale) * (0..<R).reduce(0.0) { $0 + uExpected[$1] * Double(b[n * R + $1]) }
            #expect(abs(Double(y[n]) - expected) <= 1e-5 * max(1, abs(expected)), "y[\(n)]")
        }
    }

    @Test func blocksMatchTripleLoops() {
        let T = 2 * LowRank.block + 37, K = 19, N = 13, R = 3
        let scale: Float = 0.75
        var rng = SeededRandom(seed: 7)
        func random(_ count: Int) -> [Float] { (0..<count).map { _ in rng.uniform(-1, 1) } }
        let x = random(T * K), a = random(R * K), b = random(N * R), dY = random(T * N)
        let y0 = random(T * N), dX0 = random(T * K), dA0 = random(R * K), dB0 = random(N * R)

        func sum(_ count: Int, _ term: (Int) -> Double) -> Double {
            var total: Double = 0
            for i in 0..<count { total += term(i) }
            return total
        }
        // References in Double.
        var u = [Double](repeating: 0, count: T * R), delta = [Double](repeating: 0, count: T * N)
        var dU = [Double](repeating: 0, count: T * R)
        for t in 0..<T {
            for r in 0..<R { u[t * R + r] = sum(K) { Double(x[t * K + $0]) * Double(a[r * K + $0]) } }
            for n in 0..<N { delta[t * N + n] = Double(scale) * sum(R) { u[t * R + $0] * Double(b[n * R + $0]) } }
            for r in 0..<R { dU[t * R + r] = Double(scale) * sum(N) { Double(dY[t * N + $0]) * Double(b[$0 * R + r]) } }
        }
        func close(_ value: Float, _ expected: Double) -> Bool { abs(Double(value) - expected) <= 1e-4 * max(1, abs(expected)) }

        for accumulate in [false, true] {
            var uOut = [Float](repeating: 0, count: T * R), y = y0
            LowRank.forward(x, a: a, b: b, scale: scale, u: &uOut, y: &y, T: T, K: K, N: N, R: R, accumulate: accumulate)
            #expect(uOut.indices.allSatisfy { close(uOut[$0], u[$0]) })
            #expect(y.indices.allSatisfy { close(y[$0], delta[$0] + (accumulate ? Double(y0[$0]) : 0)) }, "accumulate \(accumulate)")

            func backward() -> (dA: [Float], dB: [Float], dX: [Float], dU: [Float]) {
                var dA = dA0, dB = dB0, dX = dX0, dUOut = [Float](repeating: 0, count: T * R)
                LowRank.backward(
                    dY: dY, x: x, u: uOut, a: a, b: b, scale: scale, dA: &dA, dB: &dB, dX: &dX, dU: &dUOut, T: T, K: K, N: N, R: R,
                    accumulate: accumulate)
                return (dA, dB, dX, dUOut)
            }
            let g = backward()
            #expect(g.dU.indices.allSatisfy { close(g.dU[$0], dU[$0]) })
            for r in 0..<R {
                for k in 0..<K {
                    let expected = Double(dA0[r * K + k]) + sum(T) { dU[$0 * R + r] * Double(x[$0 * K + k]) }
                    #expect(close(g.dA[r * K + k], expected), "dA[\(r), \(k)]")
                }
                for n in 0..<N {
                    let expected = Double(dB0[n * R + r]) + Double(scale) * sum(T) { Double(dY[$0 * N + n]) * u[$0 * R + r] }
                    #expect(close(g.dB[n * R + r], expected), "dB[\(n), \(r)]")
                }
            }
            for t in 0..<T {
                for k in 0..<K {
                    let expected = (accumulate ? Double(dX0[t * K + k]) : 0) + sum(R) { dU[t * R + $0] * Double(a[$0 * K + k]) }
                    #expect(close(g.dX[t * K + k], expected), "dX[\(t), \(k)]")
                }
            }
            let again = backward()
            #expect(again.dA == g.dA && again.dB == g.dB && again.dX == g.dX)
        }
    }
}

struct RoPETests {
    @Test func rotatesHalvesByPositionAngle() {
        let D = 8, heads = 2, T = 3
        var rng = SeededRandom(seed: 2)
        let original = (0..<(T * heads * D)).map { _ in rng.uniform(-1, 1) }
        var x = original
        let positions = [0, 5, 300]
        RoPE(headDim: D, base: 10000).forward(&x, positions: positions, T: T, heads: heads)
        for t in 0..<T {
            for h in 0..<heads {
                for i in 0..<(D / 2) {
                    let angle = Double(positions[t]) * pow(10000, -Double(2 * i) / Double(D))
                    let a = Double(original[(t * heads + h) * D + i]), b = Double(original[(t * heads + h) * D + i + D / 2])
                    #expect(abs(Double(x[(t * heads + h) * D + i]) - (a * cos(angle) - b * sin(angle))) < 1e-4)
                    #expect(abs(Double(x[(t * heads + h) * D + i + D / 2]) - (b * cos(angle) + a * sin(angle))) < 1e-4)
                }
            }
        }
    }
}

struct AttentionTests {
    /// Naive causal GQA attention in Double.
    static func reference(q: [Float], k: [Float], v: [Float], T: Int, H: Int, Hkv: Int, D: Int) -> [Float] {
        var out = [Float](repeating: 0, count: T * H * D)
        for t in 0..<T {
            for h in 0..<H {
                let g = h / (H / Hkv)
                var scores = (0...t).map { s in
                    (0..<D).reduce(0.0) { $0 + Double(q[(t * H + h) * D + $1]) * Double(k[(s * Hkv + g) * D + $1]) } / Double(D).squareRoot()
                }
                let m = scores.max()!
                scores = scores.map { exp($0 - m) }
                let total = scores.reduce(0, +)
                for d in 0..<D {
                    out[(t * H + h) * D + d] = Float((0...t).reduce(0.0) { $0 + scores[$1] / total * Double(v[($1 * Hkv + g) * D + d]) })
                }
            }
        }
        return out
    }

    @Test func allQueriesOrOneAtATimeMatchReference() {
        let T = 6, H = 4, Hkv = 2, D = 8
        var rng = SeededRandom(seed: 3)
        let q = (0..<(T * H * D)).map { _ in rng.uniform(-1, 1) }
        let k = (0..<(T * Hkv * D)).map { _ in rng.uniform(-1, 1) }
        let v = (0..<(T * Hkv * D)).map { _ in rng.uniform(-1, 1) }
        let expected = Self.reference(q: q, k: k, v: v, T: T, H: H, Hkv: Hkv, D: D)

        // All T queries at once (GEMM path).
        var out = [Float](repeating: 0, count: T * H * D)
        var scratch = [Float](repeating: 0, count: max(T, H) * T)
        Attention.forward(q: q, kCache: k, vCache: v, out: &out, scratch: &scratch, T: T, past: 0, H: H, Hkv: Hkv, D: D)
        for i in out.indices { #expect(abs(out[i] - expected[i]) < 1e-5) }

        // One query at a time against the growing cache.
        for t in 0..<T {
            var row = [Float](repeating: 0, count: H * D)
            Attention.forward(
                q: Array(q[(t * H * D)..<((t + 1) * H * D)]), kCache: k, vCache: v, out: &row, scratch: &scratch,
                T: 1, past: t, H: H, Hkv: Hkv, D: D)
            for i in 0..<(H * D) { #expect(abs(row[i] - expected[t * H * D + i]) < 1e-5) }
        }
    }
}

extension AttentionTests {
    /// The decode kernel's SIMD path (the best the CPU has, or what `LORA_KERNELS` caps it at) and
    /// its portable path against a Double reference, for 1 to 4 query heads sharing a key/value
    /// head (the AVX2 path takes heads three at a time), with head sizes
    /// that exercise its 64- and 32-wide chunks, its 8-wide dot products and the scalar tails. A head's
    /// result must not depend on how many heads share the call: batched decode relies on it.
    @Test(arguments: [(1, 8), (37, 40), (70, 64), (20, 104)])
    func decodeHeadsKernelPathsMatchReference(shape: (S: Int, D: Int)) {
        let (S, D) = shape
        let stride = 3 * D
        var rng = SeededRandom(seed: 11)
        let maxHeads = 4
        let q = (0..<(maxHeads * D)).map { _ in rng.uniform(-1, 1) }
        let k = (0..<(S * stride)).map { _ in rng.uniform(-1, 1) }
        let v = (0..<(S * stride)).map { _ in rng.uniform(-1, 1) }
        let scale = 1 / Float(D).squareRoot()
        let expected = (0..<maxHeads).map { j in
            var logits = (0..<S).map { s in (0..<D).reduce(0.0) { $0 + Double(q[j * D + $1]) * Double(k[s * stride + $1]) } * Double(scale) }
            let maximum = logits.max()!
            logits = logits.map { exp($0 - maximum) }
            let total = logits.reduce(0, +)
            return (0..<D).map { d in (0..<S).reduce(0.0) { $0 + logits[$1] / total * Double(v[$1 * stride + d]) } }
        }
        for portable in [false, true] {
            /// Heads `first ..< first + count` in one call.
            func run(_ first: Int, _ count: Int) -> [Float] {
                var scores = [Float](repeating: 0, count: count * S), out = [Float](repeating: 0, count: count * D)
                q.withUnsafeBufferPointer { q in
                    let kernel = portable ? vm_attention_heads_portable : vm_attention_heads
                    kernel(q.baseAddress! + first * D, k, v, stride, &scores, &out, Int32(S), Int32(D), scale, Int32(count))
                }
                return out
            }
            for heads in 1...maxHeads {
                let out = run(0, heads)
                for j in 0..<heads {
                    for d in 0..<D { #expect(abs(Double(out[j * D + d]) - expected[j][d]) < 1e-5, "portable \(portable), heads \(heads), head \(j), d \(d)") }
                    #expect(Array(out[(j * D)..<((j + 1) * D)]) == run(j, 1), "portable \(portable), heads \(heads), head \(j) alone")
                }
            }
        }
    }
}

extension AttentionTests {
    /// The training path (B sequences, causal blocks of 64 queries) against the reference, with
    /// T = 150: two full blocks and a partial one; the probabilities are zero above the diagonal.
    @Test func sequencesPathMatchesReference() {
        let B = 2, T = 150, H = 4, Hkv = 2, D = 8
        var rng = SeededRandom(seed: 4)
        let q = (0..<(B * T * H * D)).map { _ in rng.uniform(-1, 1) }
        let k = (0..<(B * T * Hkv * D)).map { _ in rng.uniform(-1, 1) }
        let v = (0..<(B * T * Hkv * D)).map { _ in rng.uniform(-1, 1) }
        var out = [Float](repeating: 0, count: B * T * H * D), p = [Float](repeating: 0, count: B * H * T * T)
        Attention.forward(sequences: q, k: k, v: v, out: &out, probabilities: &p, B: B, T: T, H: H, Hkv: Hkv, D: D)
        for b in 0..<B {
            let expected = Self.reference(
                q: Array(q[(b * T * H * D)..<((b + 1) * T * H * D)]), k: Array(k[(b * T * Hkv * D)..<((b + 1) * T * Hkv * D)]),
                v: Array(v[(b * T * Hkv * D)..<((b + 1) * T * Hkv * D)]), T: T, H: H, Hkv: Hkv, D: D)
            let worst = expected.indices.map { abs(out[b * T * H * D + $0] - expected[$0]) }.max() ?? 0
            #expect(worst < 1e-5, "sequence \(b): largest difference \(worst)")
        }
        let aboveDiagonal = (0..<(B * H)).flatMap { task in (0..<T).flatMap { t in ((t + 1)..<T).map { p[task * T * T + t * T + $0] } } }
        #expect(aboveDiagonal.allSatisfy { $0 == 0 })
        let rowSums = (0..<(B * H * T)).map { row in (0..<T).reduce(Float(0)) { $0 + p[row * T + $1] } }
        #expect(rowSums.allSatisfy { abs($0 - 1) < 1e-5 })
    }
}

struct NormTests {
    @Test func rmsNormMatchesDefinition() {
        let x: [Float] = [1, -2, 3, 0.5, 4, -1]
        let weight: [Float] = [1, 0.5, 2]
        var out = [Float](repeating: 0, count: 6)
        var rstd = [Float](repeating: 0, count: 2)
        RMSNorm.forward(x, weight: weight, out: &out, rstd: &rstd, T: 2, C: 3, eps: 1e-5)
        for t in 0..<2 {
            let row = x[(t * 3)..<(t * 3 + 3)]
            let r = 1 / ((row.map { $0 * $0 }.reduce(0, +) / 3) + 1e-5).squareRoot()
            #expect(abs(rstd[t] - r) < 1e-6)
            for c in 0..<3 { #expect(abs(out[t * 3 + c] - x[t * 3 + c] * r * weight[c]) < 1e-6) }
        }
    }

    @Test func softmaxIsStableForLargeLogits() {
        var x: [Float] = [1000, 1001, 999]
        Softmax.forward(&x, count: 3)
        #expect(abs(x.reduce(0, +) - 1) < 1e-6)
        #expect(x[1] > x[0] && x[0] > x[2])
        #expect(abs(Softmax.logSumExp([1000, 1000], count: 2) - (1000 + log(2.0))) < 1e-9)
    }
}

/// Single-threaded BLAS sections on several threads restore OpenBLAS's thread count only when
/// the last one ends, in whatever order they end.
struct BLASSectionTests {
    @Test func overlappingSectionsRestoreTheCountOnce() {
        let before = BLAS.threadCount
        BLAS.setThreadCount(2)
        defer { BLAS.setThreadCount(before) }
        let entered = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
        Thread {
            BLAS.singleThreaded {
                entered.signal()
                release.wait()
            }
            done.signal()
        }.start()
        entered.wait()
        BLAS.singleThreaded {
            // The other section ends first, inside this one: the count stays 1.
            release.signal()
            done.wait()
            #expect(BLAS.threadCount == 1)
        }
        #expect(BLAS.threadCount == 2)
    }
}
