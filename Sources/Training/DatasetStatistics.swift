import Foundation

/// What `lora data stats` reports for one JSONL file: sizes in tokens per field, how many
/// examples a maximum length cuts, and duplicates.
public struct DatasetStatistics: Sendable, Codable {
    public var path: String
    public var format: String
    public var examples: Int
    /// Examples identical to an earlier line of the same file.
    public var duplicates: Int
    /// Token counts of each field on its own ("prompt", "completion", "user", "assistant", "text")
    /// and of the whole example as training renders it ("rendered").
    public var fields: [Field]
    /// Examples longer than `maxLength` tokens once rendered (training cuts them).
    public var truncated: Int
    public var maxLength: Int
    /// Tokens the loss is taken on, after masking and truncation.
    public var scoredTokens: Int

    public struct Field: Sendable, Codable {
        public var name: String
        public var count: Int
        public var min: Int
        public var mean: Double
        public var median: Int
        public var p95: Int
        public var max: Int
        /// Power-of-two buckets: `[upper bound, examples with upper/2 < tokens ≤ upper]` (first bucket from 0).
        public var histogram: [[Int]]

        init(name: String, lengths: [Int]) {
            let sorted = lengths.sorted()
            self.name = name
            count = sorted.count
            min = sorted.first ?? 0
            max = sorted.last ?? 0
            mean = sorted.isEmpty ? 0 : Double(sorted.reduce(0, +)) / Double(sorted.count)
            median = sorted.isEmpty ? 0 : sorted[(sorted.count - 1) / 2]
            p95 = sorted.isEmpty ? 0 : sorted[Swift.min(sorted.count - 1, Int((Double(sorted.count) * 0.95).rounded(.up)) - 1)]
            var buckets: [[Int]] = []
            var upper = 8
            while true {
                let lower = buckets.isEmpty ? -1 : upper / 2
                buckets.append([upper, sorted.count { $0 > lower && $0 <= upper }])
                if upper >= max { break }
                upper *= 2
            }
            histogram = buckets
        }
    }

    public init(path: String, records: [(line: Int, record: DatasetRecord)], encoder: ExampleEncoder) throws(DatasetError) {
        self.path = path
        format = records.first?.record.formatName ?? "-"
        examples = records.count
        maxLength = encoder.maxLength
        var seen = Set<String>()
        duplicates = 0
        var perField: [String: [Int]] = [:]
        var order: [String] = []
        var rendered: [Int] = []
        truncated = 0
        scoredTokens = 0
        func add(_ name: String, _ text: String) {
            if perField[name] == nil { order.append(name) }
            perField[name, default: []].append(encoder.tokenizer.encode(text).count)
        }
        for (line, record) in records {
            if !seen.insert(record.key).inserted { duplicates += 1 }
            switch record {
            case .text(let text): add("text", text)
            case .completion(let prompt, let completion):
                add("prompt", prompt)
                add("completion", completion)
            case .chat(let messages):
                for message in messages { add(message.role, message.content) }
            }
            let (tokens, trained) = try encoder.encode(record, path: path, line: line)
            rendered.append(tokens.count)
            if tokens.count > encoder.maxLength { truncated += 1 }
            scoredTokens += Example(tokens: Array(tokens.prefix(encoder.maxLength)), trained: Array(trained.prefix(encoder.maxLength))).scoredCount
        }
        fields = order.map { Field(name: $0, lengths: perField[$0] ?? []) } + [Field(name: "rendered", lengths: rendered)]
    }
}
