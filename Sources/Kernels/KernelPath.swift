import CKernels
import Foundation

/// The instruction set the C kernels use: what the CPU has, capped by `LORA_KERNELS`
/// (`portable`, `avx2`, `avx512`), detected once in `cpu_features.c` for every kernel alike.
/// Every path gives a batch's rows exactly the results of the rows alone; paths differ from
/// each other only in summation order.
public enum KernelPath: Int32, CaseIterable, Sendable, CustomStringConvertible {
    case portable = 0, avx2 = 1, avx512 = 2

    /// The path every kernel uses in this process.
    public static var active: KernelPath { KernelPath(rawValue: cpu_kernel_level()) ?? .portable }
    /// What the CPU offers, whatever `LORA_KERNELS` says.
    public static var detected: KernelPath { KernelPath(rawValue: cpu_detected_level()) ?? .portable }
    /// AVX-512 VNNI in use (the argmax screen's int8 products).
    public static var vnni: Bool { cpu_kernel_vnni() != 0 }

    /// A path the kernels may take here: at most the active one.
    public var isSupported: Bool { rawValue <= Self.active.rawValue }

    public var description: String {
        switch self {
        case .portable: "portable"
        case .avx2: "avx2"
        case .avx512: "avx512"
        }
    }

    /// Throws when `LORA_KERNELS` is set to something other than a path's name, so a typo
    /// cannot silently leave the fastest path on.
    public static func checkEnvironment() throws {
        if cpu_kernel_cap() == -2 { throw KernelPathError.unknownValue(getenv("LORA_KERNELS").map { String(cString: $0) } ?? "") }
    }

    /// A one-line summary for `lora info` and `lora bench`: "avx2 (CPU: avx512+vnni, LORA_KERNELS=avx2)".
    public static var summary: String {
        let cpu = "\(detected)" + (cpu_detected_vnni() != 0 ? "+vnni" : "")
        let cap = getenv("LORA_KERNELS").map { ", LORA_KERNELS=\(String(cString: $0))" } ?? ""
        return "\(active)\(vnni ? "+vnni" : "") (CPU: \(cpu)\(cap))"
    }
}

public enum KernelPathError: Error, CustomStringConvertible, Equatable {
    case unknownValue(String)

    public var description: String {
        switch self {
        case .unknownValue(let value):
            "LORA_KERNELS=\(value) is not a kernel path: use portable, avx2 or avx512 (or unset it for the best this CPU has)"
        }
    }
}
