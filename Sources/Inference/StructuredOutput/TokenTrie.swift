import Tokenizers

/// The vocabulary as a byte trie (special tokens left out), so that the tokens a grammar allows
/// next are found in one walk that shares each prefix's matcher state among the tokens that
/// start with it, and drops a whole subtree at its first rejected byte.
public final class TokenTrie: Sendable {
    /// Node i's edges are `edgeStart[i]..<edgeStart[i + 1]`; node 0 is the root.
    private let edgeStart: [Int32]
    private let edgeByte: [UInt8]
    private let edgeTarget: [Int32]
    /// The tokens whose bytes end at node i: `tokens[tokenStart[i]..<tokenStart[i + 1]]`.
    private let tokenStart: [Int32]
    private let tokens: [Int32]
    /// Each token's bytes (empty for special tokens).
    public let tokenBytes: [[UInt8]]
    /// The most bytes any token has.
    let longestToken: Int

    public init(tokenizer: BPETokenizer) {
        let vocabulary = tokenizer.vocabulary
        let bytes = (0..<vocabulary.count).map { id in vocabulary.specialIds.contains(id) ? [] : ((try? tokenizer.bytes(of: id)) ?? []) }
        tokenBytes = bytes
        longestToken = bytes.map(\.count).max() ?? 0
        // Sorted byte strings make a trie in one pass: each token adds nodes below the prefix it
        // shares with the one before.
        let order = bytes.indices.filter { !bytes[$0].isEmpty }.sorted { bytes[$0].lexicographicallyPrecedes(bytes[$1]) }
        var children: [[(UInt8, Int32)]] = [[]], ending: [[Int32]] = [[]]
        var path: [Int32] = [0], previous: [UInt8] = []
        for id in order {
            let token = bytes[id]
            var shared = 0
            while shared < min(token.count, previous.count) && token[shared] == previous[shared] { shared += 1 }
            path.removeLast(path.count - 1 - shared)
            for byte in token[shared...] {
                children.append([])
                ending.append([])
                let node = Int32(children.count - 1)
                children[Int(path.last!)].append((byte, node))
                path.append(node)
            }
            ending[Int(path.last!)].append(Int32(id))
            previous = token
        }
        var edgeStart: [Int32] = [0], edgeByte: [UInt8] = [], edgeTarget: [Int32] = []
        var tokenStart: [Int32] = [0], tokens: [Int32] = []
        for node in children.indices {
            for (byte, child) in children[node] {
                edgeByte.append(byte)
                edgeTarget.append(child)
            }
            edgeStart.append(Int32(edgeByte.count))
            tokens += ending[node]
            tokenStart.append(Int32(tokens.count))
        }
        (self.edgeStart, self.edgeByte, self.edgeTarget, self.tokenStart, self.tokens) = (edgeStart, edgeByte, edgeTarget, tokenStart, tokens)
    }

    public var nodeCount: Int { edgeStart.count - 1 }

    /// [vocabulary]: the tokens whose bytes the matcher takes from its current state.
    public func allowedTokens(_ matcher: JSONMatcher) -> [Bool] {
        var allowed = [Bool](repeating: false, count: tokenBytes.count)
        allowed.withUnsafeMutableBufferPointer { visit(0, matcher.state, matcher.grammar, $0) }
        return allowed
    }

    private func visit(_ node: Int32, _ state: JSONMatcher.State, _ grammar: JSONGrammar, _ allowed: UnsafeMutableBufferPointer<Bool>) {
        for edge in Int(edgeStart[Int(node)])..<Int(edgeStart[Int(node) + 1]) {
            var next = state
            guard next.feed(edgeByte[edge], grammar) else { continue }
            let child = Int(edgeTarget[edge])
            for token in tokens[Int(tokenStart[child])..<Int(tokenStart[child + 1])] { allowed[Int(token)] = true }
            visit(Int32(child), next, grammar, allowed)
        }
    }
}

/// A reply held to a JSON grammar: which tokens may come next, and where the reply stands after
/// each one taken.
public struct JSONConstraint: Sendable {
    public private(set) var matcher: JSONMatcher
    let trie: TokenTrie
    /// Masks by state key: inside a string most steps ask again for a state seen before.
    private var masks: [[Int32]: [Bool]] = [:]
    static let maxMasks = 64

    public init(grammar: JSONGrammar, trie: TokenTrie) {
        matcher = JSONMatcher(grammar: grammar)
        self.trie = trie
    }

    /// [vocabulary]: the tokens that keep the reply on the way to a whole document, and the stop
    /// tokens once it is one (or, should no token fit, so that the reply ends).
    public mutating func allowedTokens(stopIds: Set<Int>) -> [Bool] {
        let key = matcher.state.key(matcher.grammar, longestToken: trie.longestToken)
        if let known = masks[key] { return known }
        var allowed = trie.allowedTokens(matcher)
        if matcher.isComplete || !allowed.contains(true) {
            for id in stopIds where id < allowed.count { allowed[id] = true }
        }
        if masks.count < Self.maxMasks { masks[key] = allowed }
        return allowed
    }

    public mutating func accept(_ token: Int) {
        guard trie.tokenBytes.indices.contains(token) else { return }
        _ = matcher.feed(trie.tokenBytes[token])
    }
}
