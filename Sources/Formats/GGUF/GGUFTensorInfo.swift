/// Where one tensor lives in a GGUF file. `shape` is in GGUF order: `shape[0]` is the number
/// of columns (the contiguous dimension), so a Hugging Face `[out, in]` matrix is `[in, out]` here.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public let type: GGMLType
    /// Absolute byte range of the tensor's data in the file, already checked against the file size.
    public let byteRange: Range<Int>

    public var elementCount: Int { shape.reduce(1, *) }
}
