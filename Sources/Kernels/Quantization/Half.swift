/// Half-precision conversions for weights stored as IEEE binary16 or bfloat16.
@inline(__always)
func loadHalf(_ p: UnsafeRawPointer, _ byteOffset: Int) -> Float {
    Float(Float16(bitPattern: UInt16(littleEndian: p.loadUnaligned(fromByteOffset: byteOffset, as: UInt16.self))))
}

/// bfloat16 is the top half of a float32's bits.
@inline(__always)
func loadBFloat16(_ p: UnsafeRawPointer, _ byteOffset: Int) -> Float {
    Float(bitPattern: UInt32(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: byteOffset, as: UInt16.self))) << 16)
}
