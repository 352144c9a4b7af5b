import Foundation
import Formats

/// Writes GGUF v3 files for tests: tiny models and deliberately corrupt variants.
public struct GGUFBuilder {
    public var metadata: [(String, GGUFValue)] = []
    public var tensors: [(name: String, shape: [Int], type: GGMLType, bytes: [UInt8])] = []
    public var alignment = 32

    public init() {}

    /// Float32 tensor; `shape` in GGUF order (innermost first).
    public mutating func add(_ name: String, shape: [Int], floats: [Float]) {
        tensors.append((name, shape, .f32, floats.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }))
    }

    public func build() -> Data {
        var out = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func string(_ s: String) {
            u64(UInt64(s.utf8.count))
            out.append(contentsOf: Array(s.utf8))
        }
        func tag(_ value: GGUFValue) -> UInt32 {
            switch value {
            case .uint8: 0
            case .int8: 1
            case .uint16: 2
            case .int16: 3
            case .uint32: 4
            case .int32: 5
            case .float32: 6
            case .bool: 7
            case .string: 8
            case .array: 9
            case .uint64: 10
            case .int64: 11
            case .float64: 12
            }
        }
        func payload(_ value: GGUFValue) {
            switch value {
            case .uint8(let v): out.append(v)
            case .int8(let v): out.append(UInt8(bitPattern: v))
            case .uint16(let v): withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
            case .int16(let v): withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
            case .uint32(let v): u32(v)
            case .int32(let v): u32(UInt32(bitPattern: v))
            case .uint64(let v): u64(v)
            case .int64(let v): u64(UInt64(bitPattern: v))
            case .float32(let v): u32(v.bitPattern)
            case .float64(let v): u64(v.bitPattern)
            case .bool(let v): out.append(v ? 1 : 0)
            case .string(let s): string(s)
            case .array(let items):
                u32(items.first.map(tag) ?? 4)
                u64(UInt64(items.count))
                items.forEach(payload)
            }
        }
        u32(GGUFFile.magic)
        u32(3)
        u64(UInt64(tensors.count))
        u64(UInt64(metadata.count))
        for (key, value) in metadata {
            string(key)
            u32(tag(value))
            payload(value)
        }
        var offset = 0
        var offsets: [Int] = []
        for tensor in tensors {
            offsets.append(offset)
            offset += (tensor.bytes.count + alignment - 1) / alignment * alignment
        }
        for (tensor, tensorOffset) in zip(tensors, offsets) {
            string(tensor.name)
            u32(UInt32(tensor.shape.count))
            tensor.shape.forEach { u64(UInt64($0)) }
            u32(tensor.type.rawValue)
            u64(UInt64(tensorOffset))
        }
        while out.count % alignment != 0 { out.append(0) }
        // Padding between tensors only: the file ends with the last byte of data, so every
        // shorter prefix is a truncated file.
        for (index, tensor) in tensors.enumerated() {
            out.append(contentsOf: tensor.bytes)
            while index < tensors.count - 1 && out.count % alignment != 0 { out.append(0) }
        }
        return out
    }
}
