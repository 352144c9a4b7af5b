/// Converts ggml's stored element types to Float32, bit-exactly as ggml's `dequantize_row_*`.
/// Every function reads `count` elements (a multiple of the type's block size) from `source`.
public enum Dequantize {
    public static func f32(_ source: UnsafeRawPointer, count: Int, into y: UnsafeMutablePointer<Float>) {
        for i in 0..<count {
            y[i] = Float(bitPattern: UInt32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
        }
    }

    public static func f16(_ source: UnsafeRawPointer, count: Int, into y: UnsafeMutablePointer<Float>) {
        for i in 0..<count { y[i] = loadHalf(source, 2 * i) }
    }

    public static func bf16(_ source: UnsafeRawPointer, count: Int, into y: UnsafeMutablePointer<Float>) {
        for i in 0..<count { y[i] = loadBFloat16(source, 2 * i) }
    }

    /// Block of 32: f16 scale d, 16 bytes of 4-bit q (low nibbles are elements 0-15, high 16-31);
    /// x = (q - 8) · d.
    public static func q4_0(_ source: UnsafeRawPointer, count: Int, into y: UnsafeMutablePointer<Float>) {
        for block in 0..<(count / 32) {
            let b = source + block * 18
            let d = loadHalf(b, 0)
            let qs = (b + 2).assumingMemoryBound(to: UInt8.self)
            let out = y + block * 32
            for j in 0..<16 {
                out[j] = Float(Int(qs[j] & 0x0F) - 8) * d
                out[j + 16] = Float(Int(qs[j] >> 4) - 8) * d
            }
        }
    }

    /// Block of 32: f16 scale d, f16 minimum m, 16 bytes of 4-bit q; x = q · d + m.
    public static func q4_1(_ source: UnsafeRawPointer, count: Int, into y: UnsafeMutablePointer<Float>) {
        for block in 0..<(count / 32) {
            let b = source + block * 20
            let d = loadHalf(b, 0)
            let m = loadHalf(b, 2)
            let qs = (b + 4).assumingMemoryBound(to: UInt8.self)
            let out = y + block * 32
            for j in 0..<16 {
                out[j] = Float(qs[j] & 0x0F) * d + m
                out[j + 16] = Float(qs[j] >> 4) * d + m
            }
        }
    }

    /// Block of 32: f16 scale d, 32 signed bytes q; x = q · d.
    public static func q8_0(_ source: UnsafeRawPointer, count: Int, into y: UnsafeMutablePointer<Float>) {
        for block in 0..<(count / 32) {
            let b = source + block * 34
            let d = loadHalf(b, 0)
            let qs = (b + 2).assumingMemoryBound(to: Int8.self)
            let out = y + block * 32
            for j in 0..<32 { out[j] = Float(qs[j]) * d }
        }
    }
}
