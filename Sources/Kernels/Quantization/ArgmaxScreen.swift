import CKernels

/// The index of the largest product x·w_r of a Q8_0 matrix (the language-model head) with each
/// vector, exactly as the full Float32 product and an argmax would give it (the first of equal
/// maxima), at a fraction of the cost: what greedy decoding needs.
///
/// int8 dot products (AVX-512 VNNI, 4 × the multiply-adds of Float32 FMAs per instruction, or
/// AVX2's vpmaddubsw / vpmaddwd pairs) approximate every product with a proven error radius (see `argmax_screen.c`); only the rows
/// whose interval reaches the best lower end, typically a handful of 49,152, are then computed
/// by `QuantizedMatrix`'s kernel, bit for bit as in a full product.
public struct ArgmaxScreen: Sendable {
    public enum Path: Int32, Sendable, CaseIterable {
        case portable = 0, vnni = 1, avx2 = 2

        public var isSupported: Bool { screen_path_supported(rawValue) != 0 }

        /// The path greedy decoding uses here, nil where no path beats computing every product
        /// (the portable one does not).
        public static var best: Path? { vnni.isSupported ? .vnni : avx2.isSupported ? .avx2 : nil }
    }

    public let matrix: QuantizedMatrix
    public let path: Path
    private let packed: [UInt8]

    /// nil unless the matrix is Q8_0 with rows in groups of 16 and finite scales, and `path`
    /// runs on this CPU.
    public init?(_ matrix: QuantizedMatrix, path: Path? = .best) {
        guard let path, matrix.format == .q8_0, matrix.rows % Int(SCREEN_GROUP_ROWS) == 0, path.isSupported else { return nil }
        var packed = [UInt8](repeating: 0, count: screen_packed_bytes(Int32(matrix.rows), Int32(matrix.columns)))
        let packedAll = matrix.bytes.withUnsafeBufferPointer { blocks in
            packed.withUnsafeMutableBufferPointer { out in
                screen_pack_q8_0(blocks.baseAddress!, matrix.rowBytes, Int32(matrix.rows), Int32(matrix.columns), out.baseAddress!)
            }
        }
        guard packedAll != 0 else { return nil }
        self.matrix = matrix
        self.path = path
        self.packed = packed
    }

    /// For each of `T` vectors, the row with the largest product, or nil for a vector the screen
    /// cannot bound (a value that is not finite, or beyond 1e±20): compute its products instead.
    /// x: [T, K]
    public func argmax(_ x: UnsafePointer<Float>, T: Int) -> [Int?] {
        let K = matrix.columns
        let (screened, approx, radius) = bounds(x, T: T)
        var result = [Int?](repeating: nil, count: T)
        var candidates = [Int32](unsafeUninitializedCapacity: matrix.rows) { _, count in count = matrix.rows }
        approx.withUnsafeBufferPointer { approx in
            radius.withUnsafeBufferPointer { radius in
                for (i, t) in screened.enumerated() {
                    let count = Int(
                        screen_candidates(approx.baseAddress! + i * matrix.rows, radius.baseAddress! + i * matrix.rows, Int32(matrix.rows), &candidates))
                    var best: Int?, maximum = -Float.infinity
                    for c in candidates[..<count] {
                        let row = Int(c)
                        let value = matrix.product(row: row, x + t * K)
                        // Not reachable with finite weights and inputs within the screen's range.
                        guard value.isFinite else {
                            best = nil
                            break
                        }
                        if best == nil || value > maximum { (best, maximum) = (row, value) }
                    }
                    result[t] = best
                }
            }
        }
        return result
    }

    /// The vectors the screen can bound, and for them (in that order) the approximate products
    /// and their radii: the Float32 product of row r with vector `screened[i]` lies within
    /// approx[i·N + r] ± radius[i·N + r]. x: [T, K]
    public func bounds(_ x: UnsafePointer<Float>, T: Int) -> (screened: [Int], approx: [Float], radius: [Float]) {
        let K = matrix.columns, N = matrix.rows, blocks = K / 32
        var xq = [Int8](repeating: 0, count: T * K)
        var scales = [Float](repeating: 0, count: T * blocks)
        var corrections = [Int32](repeating: 0, count: T * blocks)
        var screened: [Int] = []
        for t in 0..<T {
            let i = screened.count
            let ok = xq.withUnsafeMutableBufferPointer { xq in
                scales.withUnsafeMutableBufferPointer { scales in
                    corrections.withUnsafeMutableBufferPointer { corrections in
                        screen_quantize(x + t * K, Int32(K), xq.baseAddress! + i * K, scales.baseAddress! + i * blocks, corrections.baseAddress! + i * blocks)
                    }
                }
            }
            if ok != 0 { screened.append(t) }
        }
        let n = screened.count
        // `screen_rows` writes every value; zeroing them first (2 × 1.5 MB for 8 vectors) would
        // cost more than finding the candidates.
        var approx = [Float](unsafeUninitializedCapacity: n * N) { _, count in count = n * N }
        var radius = [Float](unsafeUninitializedCapacity: n * N) { _, count in count = n * N }
        guard n > 0 else { return (screened, approx, radius) }
        let groups = N / Int(SCREEN_GROUP_ROWS)
        let tasks = min(8, groups), perTask = (groups + tasks - 1) / tasks
        packed.withUnsafeBufferPointer { packed in
            xq.withUnsafeBufferPointer { xq in
                scales.withUnsafeBufferPointer { scales in
                    corrections.withUnsafeBufferPointer { corrections in
                        approx.withUnsafeMutableBufferPointer { approx in
                            radius.withUnsafeMutableBufferPointer { radius in
                                Parallel.forEach(tasks) { task in
                                    let begin = task * perTask, end = min(groups, begin + perTask)
                                    guard begin < end else { return }
                                    screen_rows(
                                        path.rawValue, packed.baseAddress!, Int32(K), xq.baseAddress!, scales.baseAddress!, corrections.baseAddress!,
                                        Int32(n), approx.baseAddress!, radius.baseAddress!, Int32(N), Int32(begin), Int32(end))
                                }
                            }
                        }
                    }
                }
            }
        }
        return (screened, approx, radius)
    }
}
