import CKernels

/// A weight matrix kept in its GGUF block format (HF `[out, in]` row order), used for decode
/// steps and short prompts: reading 0.6 (Q4_1) or 1.06 (Q8_0) bytes per weight instead of 4 is
/// what bounds decode speed. Dequantized in registers, so results equal the Float32 path up to
/// summation order.
public struct QuantizedMatrix: Sendable {
    public enum Format: Sendable {
        case q4_1, q8_0

        var bytesPerBlock: Int { self == .q4_1 ? 20 : 34 }

        /// The format's number in `quant_kernels.h`.
        var kernelCode: Int32 { Int32(self == .q4_1 ? QUANT_Q4_1 : QUANT_Q8_0) }
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
    /// With `accumulate`, y += x · Wᵀ (the same as adding the product afterwards).
    public func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, T: Int = 1, accumulate: Bool = false, path: KernelPath = .active) {
        Self.forward([Product(self, y, accumulate: accumulate)], x: x, T: T, path: path)
    }

    /// Row `row`'s product with one vector, bit for bit what `forward` gives for it. x: [K]
    public func product(row: Int, _ x: UnsafePointer<Float>, path: KernelPath = .active) -> Float {
        var y: Float = 0
        bytes.withUnsafeBufferPointer { blocks in
            quant_rows(
                path.rawValue, format.kernelCode, blocks.baseAddress! + row * rowBytes, rowBytes,
                Int32(columns), x, 1, &y, 1, 0, 1, 0)
        }
        return y
    }

    /// One matrix's output in `forward(_:x:T:path:)`. y: [T, N]
    public struct Product {
        public let matrix: QuantizedMatrix
        public let y: UnsafeMutablePointer<Float>
        public let accumulate: Bool

        public init(_ matrix: QuantizedMatrix, _ y: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
            self.matrix = matrix
            self.y = y
            self.accumulate = accumulate
        }
    }

    /// y = x · Wᵀ for several matrices with the same input (q, k and v; gate and up), in one
    /// parallel pass: a pass per matrix would make the cores meet at a barrier after each.
    /// Each output equals `forward` on its matrix alone. x: [T, K]
    public static func forward(_ products: [Product], x: UnsafePointer<Float>, T: Int, path: KernelPath = .active) {
        withWeights(products.map(\.matrix)[...], []) { weights in
            // Plain values only inside the loop: copying a matrix there would retain its blocks
            // from both threads at once.
            var passes: [Pass] = []
            var tasks = 0
            for (product, weights) in zip(products, weights) {
                let matrix = product.matrix
                // Dispatching to threads costs microseconds; only large products are worth splitting
                // (with 8 rows a k/v projection is 8× the work of one row's and worth it).
                let chunks = matrix.rows * matrix.columns * T >= 1 << 18 ? 8 : 1
                passes.append(Pass(
                    weights: weights, rowBytes: matrix.rowBytes, columns: Int32(matrix.columns), rows: matrix.rows,
                    format: matrix.format.kernelCode, y: product.y, accumulate: product.accumulate ? 1 : 0,
                    firstTask: tasks, rowsPerTask: (matrix.rows + chunks - 1) / chunks))
                tasks += chunks
            }
            passes.withUnsafeBufferPointer { passes in
                Parallel.forEach(tasks) { task in
                    let pass = passes.last { $0.firstTask <= task }!
                    let begin = (task - pass.firstTask) * pass.rowsPerTask, end = min(pass.rows, begin + pass.rowsPerTask)
                    guard begin < end else { return }
                    quant_rows(
                        path.rawValue, pass.format, pass.weights, pass.rowBytes, pass.columns, x, Int32(T), pass.y, Int32(pass.rows),
                        Int32(begin), Int32(end), pass.accumulate)
                }
            }
        }
    }

    private struct Pass {
        let weights: UnsafePointer<UInt8>
        let rowBytes: Int
        let columns: Int32
        let rows: Int
        let format: Int32
        let y: UnsafeMutablePointer<Float>
        let accumulate: Int32
        let firstTask: Int
        let rowsPerTask: Int
    }

    /// The matrices' blocks as pointers, valid inside `body`.
    private static func withWeights(_ matrices: ArraySlice<QuantizedMatrix>, _ pointers: [UnsafePointer<UInt8>], _ body: ([UnsafePointer<UInt8>]) -> Void) {
        guard let first = matrices.first else { return body(pointers) }
        first.bytes.withUnsafeBufferPointer { withWeights(matrices.dropFirst(), pointers + [$0.baseAddress!], body) }
    }
}
