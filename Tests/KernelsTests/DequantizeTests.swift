import CKernels
import Foundation
import Testing
import TestSupport

import Kernels

/// Random blocks of every supported type, dequantized by the `gguf` Python package (the
/// reference llama.cpp ships); `Resources/dequantize_golden.json` holds bytes and values.
struct DequantizeTests {
    static func golden() throws -> [String: [String: Any]] {
        let path = "\(Fixtures.packageRoot)/Tests/KernelsTests/Resources/dequantize_golden.json"
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try JSONSerialization.jsonObject(with: data) as? [String: [String: Any]] ?? [:]
    }

    static func kernel(_ type: String) -> ((UnsafeRawPointer, Int, UnsafeMutablePointer<Float>) -> Void)? {
        switch type {
        case "Q4_0": Dequantize.q4_0
        case "Q4_1": Dequantize.q4_1
        case "Q8_0": Dequantize.q8_0
        case "Q4_K": Dequantize.q4_K
        case "Q6_K": Dequantize.q6_K
        case "F16": Dequantize.f16
        case "BF16": Dequantize.bf16
        default: nil
        }
    }

    @Test(arguments: ["Q4_0", "Q4_1", "Q8_0", "Q4_K", "Q6_K", "F16", "BF16"])
    func matchesReference(type: String) throws {
        let entry = try #require(try Self.golden()[type], "golden data for \(type)")
        let hex = try #require(entry["hex"] as? String)
        let expected = try #require(entry["values"] as? [Double]).map(Float.init)
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        var values = [Float](repeating: .nan, count: expected.count)
        let kernel = try #require(Self.kernel(type))
        kernel(bytes, expected.count, &values)
        // Bit-exact: both sides compute the same float32 products.
        #expect(values == expected, "first mismatch at \(maxAbsDifference(values, expected))")
    }
}

/// The fused decode kernels against "dequantize, then multiply" (the reference path).
struct HalfConversionTests {
    /// Every f16 bit pattern, through the kernels' scalar conversion, equals Swift's: zeros,
    /// subnormals, normals, infinities, and NaN (as NaN).
    @Test func everyHalfConvertsExactly() {
        for bits in 0...UInt16.max {
            let expected = Float(Float16(bitPattern: bits)), found = quant_half_to_float(bits)
            if expected.isNaN {
                #expect(found.isNaN, "bits \(bits)")
            } else {
                #expect(found.bitPattern == expected.bitPattern, "bits \(bits)")
            }
        }
    }
}

struct QuantizedMatrixTests {
    @Test(arguments: [("Q4_1", QuantizedMatrix.Format.q4_1), ("Q8_0", QuantizedMatrix.Format.q8_0)])
    func fusedDotEqualsDequantizedProduct(type: String, format: QuantizedMatrix.Format) throws {
        let entry = try #require(try DequantizeTests.golden()[type])
        let hex = try #require(entry["hex"] as? String)
        let values = try #require(entry["values"] as? [Double]).map(Float.init)
        let bytes = stride(from: 0, to: hex.count, by: 2).map { i -> UInt8 in
            let start = hex.index(hex.startIndex, offsetBy: i)
            return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16)!
        }
        // 128 values as 2 rows × 64 columns.
        let matrix = QuantizedMatrix(format: format, rows: 2, columns: 64, bytes: bytes)
        var rng = SeededRandom(seed: 5)
        let x = (0..<64).map { _ in rng.uniform(-1, 1) }
        var y = [Float](repeating: 0, count: 2)
        matrix.forward(x, &y)
        let reference = MatMul.reference(x, values, T: 1, K: 64, N: 2)
        for i in 0..<2 { #expect(abs(y[i] - reference[i]) < 1e-4 * max(1, abs(reference[i])), "row \(i)") }
    }

    /// Every batch size takes its own tile shape (weight rows in pairs or alone, up to eight
    /// vectors, slices of rows past eight): on every path this CPU runs, each row of a batch must
    /// equal that vector alone, bit for bit, and the dequantized product up to summation order.
    @Test(arguments: [QuantizedMatrix.Format.q4_1, .q8_0])
    func batchRowsEqualSoloRowsBitForBit(format: QuantizedMatrix.Format) {
        let rows = 37, columns = 96
        var rng = SeededRandom(seed: 11)
        let matrix = Self.randomMatrix(format, rows: rows, columns: columns, &rng)
        let bytes = matrix.bytes
        var dequantized = [Float](repeating: 0, count: rows * columns)
        bytes.withUnsafeBytes { source in
            (format == .q4_1 ? Dequantize.q4_1 : Dequantize.q8_0)(source.baseAddress!, rows * columns, &dequantized)
        }
        let x = (0..<17 * columns).map { _ in rng.uniform(-1, 1) }
        let reference = MatMul.reference(x, dequantized, T: 17, K: columns, N: rows)
        #expect(KernelPath.portable.isSupported)
        for path in KernelPath.allCases where path.isSupported {
            var solo = [Float](repeating: 0, count: 17 * rows)
            for t in 0..<17 {
                x.withUnsafeBufferPointer { x in
                    solo.withUnsafeMutableBufferPointer { solo in
                        matrix.forward(x.baseAddress! + t * columns, solo.baseAddress! + t * rows, path: path)
                    }
                }
            }
            for i in solo.indices {
                #expect(abs(solo[i] - reference[i]) < 1e-4 * max(1, abs(reference[i])), "\(path) element \(i)")
            }
            for T in 1...17 {
                var batch = [Float](repeating: 0, count: T * rows)
                matrix.forward(x, &batch, T: T, path: path)
                let differing = batch.indices.filter { batch[$0] != solo[$0] }
                let equal = differing.isEmpty
                #expect(equal, "\(path), batch of \(T): \(differing.count) values differ from solo, first at \(differing.first ?? 0)")
            }
        }
    }

    /// Random blocks with realistic scales (d > 0; for Q4_1 a negative minimum).
    static func randomMatrix(_ format: QuantizedMatrix.Format, rows: Int, columns: Int, _ rng: inout SeededRandom) -> QuantizedMatrix {
        var bytes: [UInt8] = []
        for _ in 0..<(rows * columns / 32) {
            let scales: [Float] = format == .q4_1 ? [rng.uniform(0.001, 0.02), rng.uniform(-0.1, 0)] : [rng.uniform(0.001, 0.02)]
            for scale in scales { withUnsafeBytes(of: Float16(scale).bitPattern.littleEndian) { bytes += $0 } }
            let payload = format == .q4_1 ? 16 : 32
            bytes += (0..<payload).map { _ in UInt8(truncatingIfNeeded: Int(rng.uniform(0, 256))) }
        }
        return QuantizedMatrix(format: format, rows: rows, columns: columns, bytes: bytes)
    }

    /// Several matrices with one input in one parallel pass (q, k and v in a decode step): each
    /// output equals that matrix's own `forward`, bit for bit, whether the matrix is split into
    /// chunks (the first and last, whose last chunk is partial) or not (the small middle one,
    /// which adds onto its output: y + x · Wᵀ as one addition after the product).
    @Test(arguments: [1, 4])
    func productsInOnePassEqualEachAlone(T: Int) {
        var rng = SeededRandom(seed: 5)
        let columns = 256
        let matrices = [
            Self.randomMatrix(.q4_1, rows: 1024, columns: columns, &rng), Self.randomMatrix(.q8_0, rows: 37, columns: columns, &rng),
            Self.randomMatrix(.q4_1, rows: 300, columns: columns, &rng),
        ]
        let x = (0..<(T * columns)).map { _ in rng.uniform(-1, 1) }
        let alone = matrices.map { matrix in
            var y = [Float](repeating: 0, count: T * matrix.rows)
            matrix.forward(x, &y, T: T)
            return y
        }
        var y0 = [Float](repeating: .nan, count: T * matrices[0].rows), y1 = [Float](repeating: .nan, count: T * matrices[1].rows)
        var y2 = [Float](repeating: .nan, count: T * matrices[2].rows)
        let start = (0..<y1.count).map { _ in rng.uniform(-1, 1) }
        y1 = start
        y0.withUnsafeMutableBufferPointer { y0 in
            y1.withUnsafeMutableBufferPointer { y1 in
                y2.withUnsafeMutableBufferPointer { y2 in
                    let products = zip(matrices, [y0, y1, y2]).enumerated().map { i, pair in
                        QuantizedMatrix.Product(pair.0, pair.1.baseAddress!, accumulate: i == 1)
                    }
                    QuantizedMatrix.forward(products, x: x, T: T)
                }
            }
        }
        let outputs = [y0, y1, y2]
        #expect(outputs[0] == alone[0] && outputs[2] == alone[2])
        #expect(outputs[1] == zip(start, alone[1]).map { $0 + $1 })
    }
}
