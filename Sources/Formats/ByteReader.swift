import Foundation

/// A cursor over little-endian bytes that never reads past the end: every read is checked
/// and reports the offset it failed at, so a truncated file names where it ends.
struct ByteReader {
    let data: Data
    private(set) var offset: Int

    init(data: Data, offset: Int = 0) {
        self.data = data
        self.offset = offset
    }

    enum Failure: Error {
        case truncated(offset: Int, needed: Int, available: Int)
    }

    var remaining: Int { data.count - offset }

    mutating func bytes(_ count: Int) throws(Failure) -> Data {
        guard count >= 0, count <= remaining else {
            throw .truncated(offset: offset, needed: count, available: max(remaining, 0))
        }
        let start = data.startIndex + offset
        offset += count
        return data[start..<(start + count)]
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type) throws(Failure) -> T {
        let size = MemoryLayout<T>.size
        guard size <= remaining else {
            throw .truncated(offset: offset, needed: size, available: max(remaining, 0))
        }
        var value: T = 0
        let start = data.startIndex + offset
        _ = withUnsafeMutableBytes(of: &value) { destination in
            data.copyBytes(to: destination, from: start..<(start + size))
        }
        offset += size
        return T(littleEndian: value)
    }

}
