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
}
