import Foundation

/// The JSON documents a constrained reply may take, as nodes a `JSONMatcher` walks byte by byte:
/// "any JSON object" (OpenAI's `json_object`), or a JSON Schema compiled by
/// `JSONGrammar(schema:)`. Every document the grammar accepts is valid JSON (and valid under the
/// schema); for speed and termination it accepts a subset of them: object properties in the
/// schema's order, at most `maxSpaces` whitespace bytes in a row, numbers of at most 15 digits
/// before and after the point and 2 in the exponent (so that every number is a finite double,
/// which clients parse into), nesting at most `maxDepth` deep.
public final class JSONGrammar: Sendable {
    enum Node: Sendable {
        /// Properties in declared order, required ones mandatory, no others.
        case object(ObjectShape)
        /// Any keys, any values.
        case anyObject
        case array(items: Int32, minItems: Int, maxItems: Int)
        case string(minLength: Int, maxLength: Int)
        case number(integer: Bool)
        /// One of a set of literal byte strings (enum, const, true/false/null): a trie from `root`.
        case literals(root: Int32)
        /// One of several nodes, told apart by their first byte.
        case union([Int32])
    }

    struct ObjectShape: Sendable {
        var values: [Int32]
        /// keys[i]: the trie of the JSON-encoded keys that may come next when property i is the
        /// first not yet written (i up to the first required one); its terminals are property indices.
        var keys: [Int32]
        /// closable[i]: no required property at index i or later (count + 1 entries).
        var closable: [Bool]
    }

    static let maxDepth = 32
    static let maxSpaces = 32
    static let maxDigits = 15
    static let maxExponentDigits = 2

    let nodes: [Node]
    let trie: LiteralTrie
    let root: Int32

    // Nodes every grammar has, for "any JSON value" and object keys.
    static let anyString: Int32 = 0
    static let anyValue: Int32 = 5

    init(nodes: [Node], trie: LiteralTrie, root: Int32) {
        self.nodes = nodes
        self.trie = trie
        self.root = root
    }

    /// OpenAI's `json_object`: any JSON object.
    public static func anyObject() -> JSONGrammar {
        var builder = Builder()
        let root = builder.add(.anyObject)
        return JSONGrammar(nodes: builder.nodes, trie: builder.trie, root: root)
    }

    /// The node that starts with `byte` among `node` and, for a union, its members.
    func resolve(_ node: Int32, startingWith byte: UInt8) -> Int32? {
        switch nodes[Int(node)] {
        case .object, .anyObject: return byte == UInt8(ascii: "{") ? node : nil
        case .array: return byte == UInt8(ascii: "[") ? node : nil
        case .string: return byte == UInt8(ascii: "\"") ? node : nil
        case .number: return byte == UInt8(ascii: "-") || JSONMatcher.isDigit(byte) ? node : nil
        case .literals(let root): return trie.child(root, byte) != nil ? node : nil
        case .union(let members):
            for member in members { if let found = resolve(member, startingWith: byte) { return found } }
            return nil
        }
    }

    /// The bytes a node may start with (for telling union members apart).
    func firstBytes(_ node: Int32) -> Set<UInt8> {
        Set((0...255).filter { resolve(node, startingWith: UInt8($0)) != nil }.map(UInt8.init))
    }

    /// Collects nodes and literal tries; starts with the nodes of "any JSON value".
    struct Builder {
        var nodes: [Node] = []
        var trie = LiteralTrie()

        init() {
            let keywords = trie.newRoot()
            for word in ["true", "false", "null"] { trie.insert(Array(word.utf8), from: keywords, value: 0) }
            nodes = [
                .string(minLength: 0, maxLength: Int(Int32.max)),  // anyString
                .number(integer: false),
                .literals(root: keywords),
                .anyObject,
                .array(items: JSONGrammar.anyValue, minItems: 0, maxItems: Int(Int32.max)),
                .union([3, 4, 0, 1, 2]),  // anyValue
            ]
        }

        mutating func add(_ node: Node) -> Int32 {
            nodes.append(node)
            return Int32(nodes.count - 1)
        }
    }
}

/// Byte tries of literals (keys, enum values); node 0 is unused so that 0 can mean "none".
struct LiteralTrie: Sendable {
    private(set) var children: [[(byte: UInt8, node: Int32)]] = [[]]
    /// The value a literal ending at the node stands for, or -1.
    private(set) var terminal: [Int32] = [-1]

    mutating func newRoot() -> Int32 {
        children.append([])
        terminal.append(-1)
        return Int32(children.count - 1)
    }

    mutating func insert(_ bytes: [UInt8], from root: Int32, value: Int32) {
        var node = root
        for byte in bytes {
            if let next = child(node, byte) {
                node = next
            } else {
                let next = newRoot()
                children[Int(node)].append((byte, next))
                node = next
            }
        }
        terminal[Int(node)] = value
    }

    func child(_ node: Int32, _ byte: UInt8) -> Int32? {
        for edge in children[Int(node)] where edge.byte == byte { return edge.node }
        return nil
    }

    func value(_ node: Int32) -> Int32? { terminal[Int(node)] >= 0 ? terminal[Int(node)] : nil }
}
