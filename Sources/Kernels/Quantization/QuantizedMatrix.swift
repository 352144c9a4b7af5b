import CKernels

/// A weight matrix kept in its GGUF block format (HF `[out, in]` row order), used for decode
/// steps and short prompts: reading 0.6 (Q4_1) or 1.06 (Q8_0) bytes per weight instead of 4 is
/// what bounds decode speed. Dequantized in registers, so results equal the Float32 path up to
/// summation order.
public struct QuantizedMatrix: Sendable {
    public enum Format: Sendable {
        case q4_1, q8_0

        var bytesPerBlock: Int { self == .q4_1 ? 20 : 34 }
    }

    /// The kernels' instruction sets. Every path gives a batch's rows exactly the results of the
    /// vectors alone; paths differ from each other in summation order.
    public enum KernelPath: Int32, CaseIterable, Sendable {
        case portable = 0, avx2 = 1, avx512 = 2

        /// The fastest path this CPU runs (what `forward` uses unless told otherwise).
        public static let best = KernelPath(rawValue: quant_best_path()) ?? .portable

        public var isSupported: Bool { quant_path_supported(rawValue) != 0 }
    }

    public let format: Format
    /// N (output features)
    public let rows: Int
    /// K (input features), a multiple of 32
    public let columns: Int
    public let bytes: [UInt8]

    public init(format: Format, rows: Int, columns: Int, bytes: [UInt8]) {
        precondition(columns % 32 == 0 && bytes.count == rows * columns / 32 * format.bytesPerBlock)
        self.format = format
        self.rows = rows
        self.columns = columns
        self.bytes = bytes
    }

    public var rowBytes: Int { columns / 32 * format.bytesPerBlock }

    /// y = x · Wᵀ for `T` activation rows, each computed exactly as if alone (the batch only
    /// shares the reading of the weights). x: [T, K]  y: [T, N]
    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, T: Int = 1, path: KernelPath = .best) {
        let rowBytes = rowBytes, columns = columns, rows = rows
        let format = Int32(format == .q4_1 ? QUANT_Q4_1 : QUANT_Q8_0)
        // Dispatching to threads costs microseconds; only large products are worth splitting
        // (with 8 rows a k/v projection is 8× the work of one row's and worth it).
        let chunks = rows * columns * T >= 1 << 18 ? 8 : 1
        let perChunk = (rows + chunks - 1) / chunks
        bytes.withUnsafeBufferPointer { weights in
            Parallel.forEach(chunks) { chunk in
                let begin = Int32(chunk * perChunk), end = Int32(min(rows, (chunk + 1) * perChunk))
                guard begin < end else { return }
                quant_rows(path.rawValue, format, weights.baseAddress!, rowBytes, Int32(columns), x, Int32(T), y, Int32(rows), begin, end)
            }
        }
    }
}
