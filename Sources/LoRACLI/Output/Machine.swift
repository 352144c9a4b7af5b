import Foundation
import Kernels

/// The machine's own limits, measured in the same run as a benchmark so that figures can be
/// read as fractions of what this hardware can do.
enum Machine {
    /// OpenBLAS sgemm throughput on a model-shaped product [T, K] · [N, K]ᵀ.
    static func sgemmGFLOPS(T: Int, K: Int, N: Int) -> Double {
        let x = [Float](repeating: 0.5, count: T * K)
        let w = [Float](repeating: 0.25, count: N * K)
        var y = [Float](repeating: 0, count: T * N)
        MatMul.forward(x, w, &y, T: T, K: K, N: N)
        var best = 0.0
        for _ in 0..<5 {
            let start = Date()
            MatMul.forward(x, w, &y, T: T, K: K, N: N)
            best = max(best, 2.0 * Double(T * K * N) / Date().timeIntervalSince(start) / 1e9)
        }
        return best
    }

    /// Read bandwidth over a buffer much larger than the caches, summed on all cores.
    static func readBandwidthGBs() -> Double {
        let count = 64 << 20
        let buffer = [Float](repeating: 1, count: count)
        let chunks = 64
        var best = 0.0
        for _ in 0..<3 {
            let start = Date()
            var sums = [Float](repeating: 0, count: chunks)
            buffer.withUnsafeBufferPointer { b in
                sums.withUnsafeMutableBufferPointer { s in
                    let s = s.baseAddress!
                    Parallel.forEach(chunks) { chunk in
                        let size = count / chunks
                        var sum = SIMD16<Float>()
                        let base = UnsafeRawPointer(b.baseAddress! + chunk * size)
                        for i in stride(from: 0, to: size, by: 16) {
                            sum += base.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                        }
                        s[chunk] = sum.sum()
                    }
                }
            }
            let seconds = Date().timeIntervalSince(start)
            precondition(sums.reduce(0, +) > 0)
            best = max(best, Double(count * 4) / seconds / 1e9)
        }
        return best
    }

    /// Current and peak resident set size from /proc/self/status (VmRSS, VmHWM), in MiB.
    static func residentMiB() -> (current: Int, peak: Int) {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0) }
        func field(_ name: String) -> Int {
            for line in status.split(separator: "\n") where line.hasPrefix(name) {
                let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
                return kilobytes / 1024
            }
            return 0
        }
        return (field("VmRSS:"), field("VmHWM:"))
    }
}
