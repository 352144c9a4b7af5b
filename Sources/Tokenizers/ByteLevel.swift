/// GPT-2's reversible byte ↔ printable-character mapping: printable Latin-1 bytes map to
/// themselves, the other 68 bytes to code points from U+0100 up, so every byte sequence is a
/// string of visible characters (a space becomes "Ġ", a newline "Ċ").
public enum ByteLevel {
    static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            let printable = (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte)
            if printable {
                table[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                table[byte] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    static let scalarToByte: [UInt32: UInt8] = {
        var inverse: [UInt32: UInt8] = [:]
        for (byte, scalar) in byteToScalar.enumerated() { inverse[scalar.value] = UInt8(byte) }
        return inverse
    }()

    /// The byte-level spelling of raw bytes, as vocabulary entries are written.
    public static func encode<S: Sequence<UInt8>>(_ bytes: S) -> String {
        var s = String.UnicodeScalarView()
        for byte in bytes { s.append(byteToScalar[Int(byte)]) }
        return String(s)
    }

    /// The raw bytes a byte-level token spells; nil if it contains a character outside the table.
    static func decode(_ token: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(token.unicodeScalars.count)
        for scalar in token.unicodeScalars {
            guard let byte = scalarToByte[scalar.value] else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}
