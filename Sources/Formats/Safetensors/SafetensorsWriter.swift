import Foundation

/// Builds a safetensors file from Float32 tensors, in the layout `safetensors.torch.save_file`
/// writes: header padded with spaces to a multiple of 8 bytes, tensors in name order.
public struct SafetensorsWriter {
    private var entries: [(name: String, shape: [Int], values: [Float])] = []
    private var metadata: [String: String]

    public init(metadata: [String: String] = [:]) {
        self.metadata = metadata
    }

    /// `shape` is row-major, outermost first; `values.count` must equal its product.
    public mutating func add(_ name: String, shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not match \(values.count) values")
        entries.append((name, shape, values))
    }

    public func serialized() -> Data {
        let sorted = entries.sorted { $0.name < $1.name }
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for entry in sorted {
            let size = entry.values.count * 4
            header[entry.name] = ["dtype": "F32", "shape": entry.shape, "data_offsets": [offset, offset + size]] as [String: Any]
            offset += size
        }
        // `try!` is safe: the header holds only strings, integers, arrays and dictionaries of them.
        var json = try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var data = Data()
        data.reserveCapacity(8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        for entry in sorted {
            entry.values.withUnsafeBytes { data.append(contentsOf: $0) }
        }
        return data
    }

    public func write(to path: String) throws(AtomicWrite.Failure) {
        try AtomicWrite.write(serialized(), to: path)
    }
}
