import Testing
import TestSupport

import Kernels

/// The argmax screen against the full Float32 products it stands in for: the same row (the
/// first of equal maxima) for every vector, on every path this CPU runs, with the radius a true
/// and tight bound.
struct ArgmaxScreenTests {
    static let paths = ArgmaxScreen.Path.allCases.filter(\.isSupported)

    /// A Q8_0 matrix from each row's blocks: (scale, 32 signed weights).
    static func q8_0(_ rows: [[(Float, [Int8])]]) -> QuantizedMatrix {
        var bytes: [UInt8] = []
        for row in rows {
            for (scale, weights) in row {
                withUnsafeBytes(of: Float16(scale).bitPattern.littleEndian) { bytes += $0 }
                bytes += weights.map { UInt8(bitPattern: $0) }
            }
        }
        return QuantizedMatrix(format: .q8_0, rows: rows.count, columns: rows[0].count * 32, bytes: bytes)
    }

    /// Rows that are one random row with a few weights nudged by one step: their products
    /// differ by little, so many rows compete for the maximum and reach the exact products.
    static func competingRows(rows: Int, blocks: Int, _ rng: inout SeededRandom) -> QuantizedMatrix {
        let base = (0..<blocks).map { _ in (rng.uniform(0.002, 0.02), (0..<32).map { _ in Int8(rng.uniform(-127, 128).rounded(.down)) }) }
        return q8_0(
            (0..<rows).map { _ in
                base.map { scale, weights in
                    (scale, weights.map { w in rng.uniform(0, 1) < 0.05 ? Int8(clamping: Int(w) + (rng.uniform(0, 1) < 0.5 ? -1 : 1)) : w })
                }
            })
    }

    static func products(_ matrix: QuantizedMatrix, _ x: [Float], T: Int) -> [Float] {
        var y = [Float](repeating: 0, count: T * matrix.rows)
        matrix.forward(x, &y, T: T)
        return y
    }

    /// The first index of the largest value, as greedy decoding picks.
    static func firstArgmax(_ values: ArraySlice<Float>) -> Int {
        var best = values.startIndex
        for i in values.indices where values[i] > values[best] { best = i }
        return best - values.startIndex
    }

    /// Vectors of mixed scales: an outlier now and then, and an all-zero block.
    static func vectors(T: Int, columns: Int, _ rng: inout SeededRandom) -> [Float] {
        (0..<(T * columns)).map { i in
            if i % columns < 32 && i / columns == 1 { return 0 }
            let value = rng.uniform(-2, 2)
            return rng.uniform(0, 1) < 0.02 ? value * 40 : value
        }
    }

    @Test(arguments: [1, 3, 8, 11])
    func argmaxEqualsTheFullProducts(T: Int) throws {
        var rng = SeededRandom(seed: UInt64(T))
        for matrix in [Self.competingRows(rows: 256, blocks: 6, &rng), QuantizedMatrixTests.randomMatrix(.q8_0, rows: 128, columns: 96, &rng)] {
            let x = Self.vectors(T: T, columns: matrix.columns, &rng)
            let full = Self.products(matrix, x, T: T)
            for path in Self.paths {
                let screen = try #require(ArgmaxScreen(matrix, path: path))
                let found = screen.argmax(x, T: T)
                for t in 0..<T {
                    #expect(found[t] == Self.firstArgmax(full[(t * matrix.rows)..<((t + 1) * matrix.rows)]), "path \(path) vector \(t)")
                }
            }
        }
    }

    @Test func tiesGoToTheFirstRow() throws {
        var rng = SeededRandom(seed: 3)
        var rows = (0..<32).map { _ in [(Float(0.01), (0..<32).map { _ in Int8(rng.uniform(-50, 50).rounded(.down)) })] }
        let strongest: [(Float, [Int8])] = [(0.01, Array(repeating: 100, count: 32))]
        (rows[7], rows[30]) = (strongest, strongest)
        let matrix = Self.q8_0(rows)
        let x = [Float](repeating: 1, count: 32)
        for path in Self.paths {
            #expect(try #require(ArgmaxScreen(matrix, path: path)).argmax(x, T: 1) == [7])
        }
    }

    /// Every Float32 product lies within approx ± radius; and the radius is tight: with every
    /// weight the same sign and every input just below a half step of its block's scale, the
    /// quantization errors add up to 95% of it, so a radius much smaller would fail here.
    @Test func radiusBoundsTheKernelTightly() throws {
        var rng = SeededRandom(seed: 9)
        let random = QuantizedMatrixTests.randomMatrix(.q8_0, rows: 64, columns: 128, &rng)
        let aligned = Self.q8_0(Array(repeating: Array(repeating: (Float(1), Array(repeating: Int8(100), count: 32)), count: 4), count: 16))
        let halfSteps = (0..<128).map { i -> Float in i % 32 == 0 ? 1.27 : (Float(i % 32) + 0.49) * 0.01 }
        for (matrix, x, tightness) in [(random, Self.vectors(T: 4, columns: 128, &rng), Float(0)), (aligned, halfSteps, 0.9)] {
            let T = x.count / matrix.columns
            let full = Self.products(matrix, x, T: T)
            for path in Self.paths {
                let (screened, approx, radius) = try #require(ArgmaxScreen(matrix, path: path)).bounds(x, T: T)
                #expect(screened == Array(0..<T))
                let ratios = full.indices.map { abs(full[$0] - approx[$0]) / radius[$0] }
                #expect(ratios.max()! <= 1, "path \(path)")
                #expect(ratios.max()! >= tightness, "path \(path)")
            }
        }
    }

    /// Every path the CPU runs against the portable one, on rows that hold the extreme weights
    /// -128 and 127 (where AVX2's sign trick and int16 pair sums are closest to their limits)
    /// against inputs of both signs at full scale.
    @Test(.enabled(if: paths.count > 1, "only the portable path runs here (LORA_KERNELS or the CPU)"))
    func pathsAgreeBitForBit() throws {
        var rng = SeededRandom(seed: 4)
        var extremeRows: [[(Float, [Int8])]] = []
        for r in 0..<32 {
            var blocks: [(Float, [Int8])] = []
            for b in 0..<3 {
                let weights: [Int8] = (0..<32).map { j in (r + j) % 2 == 0 ? -128 : 127 }
                blocks.append((Float(b + 1) * 0.01, weights))
            }
            extremeRows.append(blocks)
        }
        let extremeX: [Float] = (0..<(7 * 96)).map { i in (i / 3) % 2 == 0 ? 1 : -1 }
        let cases: [(QuantizedMatrix, [Float])] = [
            (Self.competingRows(rows: 96, blocks: 3, &rng), Self.vectors(T: 9, columns: 96, &rng)), (Self.q8_0(extremeRows), extremeX),
        ]
        for (matrix, x) in cases {
            let T = x.count / matrix.columns
            let portable = try #require(ArgmaxScreen(matrix, path: .portable)).bounds(x, T: T)
            for path in Self.paths where path != .portable {
                let other = try #require(ArgmaxScreen(matrix, path: path)).bounds(x, T: T)
                #expect(portable.approx.map(\.bitPattern) == other.approx.map(\.bitPattern), "path \(path)")
                #expect(portable.radius.map(\.bitPattern) == other.radius.map(\.bitPattern), "path \(path)")
            }
        }
    }

    /// Values the bound does not cover are left to the caller; a zero vector ties every row at 0.
    @Test func unboundableVectorsAreLeftToTheCaller() throws {
        var rng = SeededRandom(seed: 6)
        let matrix = QuantizedMatrixTests.randomMatrix(.q8_0, rows: 32, columns: 64, &rng)
        var x = [Float](repeating: 0, count: 4 * 64)
        x[64] = .nan
        x[128] = 1e25
        x[192] = 1e-25
        for path in Self.paths {
            #expect(try #require(ArgmaxScreen(matrix, path: path)).argmax(x, T: 4) == [0, nil, nil, nil])
        }
        #expect(ArgmaxScreen(QuantizedMatrixTests.randomMatrix(.q4_1, rows: 32, columns: 64, &rng), path: .portable) == nil)
        #expect(ArgmaxScreen(QuantizedMatrixTests.randomMatrix(.q8_0, rows: 40, columns: 64, &rng), path: .portable) == nil)
    }
}
