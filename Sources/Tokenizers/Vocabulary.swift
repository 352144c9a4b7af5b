/// Token strings and their roles. Regular tokens are written in GPT-2 byte-level form; special
/// tokens (control and user-defined, e.g. `<|im_start|>`) are literal text matched whole.
public struct Vocabulary: Sendable {
    public let tokens: [String]
    public let ids: [String: Int]
    /// Ids of tokens matched whole in input text and decoded verbatim.
    public let specialIds: Set<Int>
    public let bosId: Int?
    public let eosId: Int?

    public init(tokens: [String], specialIds: Set<Int>, bosId: Int?, eosId: Int?) {
        self.tokens = tokens
        var ids: [String: Int] = [:]
        ids.reserveCapacity(tokens.count)
        for (id, token) in tokens.enumerated() where ids[token] == nil { ids[token] = id }
        self.ids = ids
        self.specialIds = specialIds
        self.bosId = bosId
        self.eosId = eosId
    }

    public var count: Int { tokens.count }

    public func id(of token: String) -> Int? { ids[token] }
}
