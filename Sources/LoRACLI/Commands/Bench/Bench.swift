import Foundation
import LoRA
import Models

/// What the benchmarks share: their JSON output, rates from repeated runs, and test adapters.
enum Bench {
    /// Eight distinct adapters (B filled, so each changes the output) saved as PEFT folders
    /// `a0` ... `a7` under `directory`.
    static func writeAdapters(_ loraConfig: LoRAConfig, config: LlamaConfig, to directory: String) throws -> [[LayerAdapters]] {
        try (0..<8).map { seed in
            var adapter = LoRAAdapter.initialized(loraConfig, for: config, seed: UInt64(seed))
            for l in adapter.layers.indices {
                for tensor in loraConfig.targets {
                    guard let count = adapter.layers[l][tensor]?.b.count else { continue }
                    adapter.layers[l][tensor]?.b = (0..<count).map { Float(($0 * 7 + seed) % 13) * 1e-3 }
                }
            }
            try adapter.savePEFT(to: "\(directory)/a\(seed)", baseModelName: "bench")
            return adapter.layers
        }
    }

    static func printJSON(_ object: [String: Any]) throws {
        let json = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        print(String(decoding: json, as: UTF8.self))
    }

    /// Runs `body` `count` times; it returns (units, seconds) and the rates are units/second.
    static func measure(_ count: Int, _ body: () throws -> (Double, Double)) rethrows -> (best: Double, median: Double) {
        var rates: [Double] = []
        for _ in 0..<count {
            let (units, seconds) = try body()
            rates.append(units / seconds)
        }
        rates.sort()
        return (rates.last!, rates[rates.count / 2])
    }

    static func measure(_ count: Int, _ body: () throws -> Double) rethrows -> (best: Double, median: Double) {
        try measure(count) { () throws -> (Double, Double) in
            let start = Date()
            let units = try body()
            return (units, Date().timeIntervalSince(start))
        }
    }

    static func round3(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }
}
