/// ggml's "K-quants": super-blocks of 256 weights split into sub-blocks with their own
/// quantized scales.
extension Dequantize {
    /// Q4_K super-block (144 bytes): f16 d, f16 dmin, 12 bytes packing eight 6-bit (scale, min)
    /// pairs, 128 bytes of 4-bit q. Each 64 weights use two pairs: the low nibbles of 32 bytes
    /// with the first, the high nibbles with the second; x = d·scale·q − dmin·min.
    public static func q4_K(_ source: UnsafeRawPointer, count: Int, into y: UnsafeMutablePointer<Float>) {
        for block in 0..<(count / 256) {
            let b = source + block * 144
            let d = loadHalf(b, 0)
            let dmin = loadHalf(b, 2)
            let scales = (b + 4).assumingMemoryBound(to: UInt8.self)
            var q = (b + 16).assumingMemoryBound(to: UInt8.self)
            var out = y + block * 256
            for pair in stride(from: 0, to: 8, by: 2) {
                let (sc1, m1) = scaleMin(pair, scales)
                let (sc2, m2) = scaleMin(pair + 1, scales)
                let d1 = d * Float(sc1), min1 = dmin * Float(m1)
                let d2 = d * Float(sc2), min2 = dmin * Float(m2)
                for l in 0..<32 { out[l] = d1 * Float(q[l] & 0x0F) - min1 }
                for l in 0..<32 { out[32 + l] = d2 * Float(q[l] >> 4) - min2 }
                q += 32
                out += 64
            }
        }
    }

    /// Unpacks the j-th 6-bit (scale, min) pair of Q4_K/Q5_K (ggml's `get_scale_min_k4`).
    @inline(__always)
    static func scaleMin(_ j: Int, _ q: UnsafePointer<UInt8>) -> (UInt8, UInt8) {
        if j < 4 { return (q[j] & 63, q[j + 4] & 63) }
        return ((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }

    /// Q6_K super-block (210 bytes): 128 bytes of low 4 bits, 64 bytes of high 2 bits, sixteen
    /// signed 8-bit scales, f16 d; x = d · scale · (q − 32), 16 weights per scale.
    public static func q6_K(_ source: UnsafeRawPointer, count: Int, into y: UnsafeMutablePointer<Float>) {
        for block in 0..<(count / 256) {
            let b = source + block * 210
            var ql = b.assumingMemoryBound(to: UInt8.self)
            var qh = (b + 128).assumingMemoryBound(to: UInt8.self)
            var sc = (b + 192).assumingMemoryBound(to: Int8.self)
            let d = loadHalf(b, 208)
            var out = y + block * 256
            for _ in 0..<2 {
                for l in 0..<32 {
                    let s = l / 16
                    let q1 = Int(ql[l] & 0x0F) | Int((qh[l] >> 0) & 3) << 4
                    let q2 = Int(ql[l + 32] & 0x0F) | Int((qh[l] >> 2) & 3) << 4
                    let q3 = Int(ql[l] >> 4) | Int((qh[l] >> 4) & 3) << 4
                    let q4 = Int(ql[l + 32] >> 4) | Int((qh[l] >> 6) & 3) << 4
                    out[l] = d * Float(sc[s]) * Float(q1 - 32)
                    out[l + 32] = d * Float(sc[s + 2]) * Float(q2 - 32)
                    out[l + 64] = d * Float(sc[s + 4]) * Float(q3 - 32)
                    out[l + 96] = d * Float(sc[s + 6]) * Float(q4 - 32)
                }
                out += 128
                ql += 64
                qh += 32
                sc += 8
            }
        }
    }
}
