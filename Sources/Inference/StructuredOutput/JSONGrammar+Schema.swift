/// A schema keyword or shape this grammar cannot enforce exactly; `path` is a JSON pointer.
public struct JSONSchemaError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var reason: String

    public var description: String { "schema at \(path.isEmpty ? "/" : path): \(reason)" }
}

extension JSONGrammar {
    /// Keywords that only describe a schema; they constrain nothing.
    static let annotations: Set<String> = [
        "title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly", "writeOnly", "$defs",
        "definitions",
    ]
    static let keywords: Set<String> = [
        "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems", "minLength", "maxLength", "enum", "const",
        "anyOf", "oneOf", "$ref",
    ]

    /// Compiles a JSON Schema subset: `type` (one or a list), `properties` / `required` /
    /// `additionalProperties` (no property beyond those listed is generated), `items`,
    /// `minItems` / `maxItems`, `minLength` / `maxLength`, `enum`, `const`, `anyOf` / `oneOf`
    /// whose members start with different characters, and `$ref` into `#/$defs` or
    /// `#/definitions` (recursion included). Any other keyword is refused, naming it and its place.
    public convenience init(schema: JSONValue) throws(JSONSchemaError) {
        var compiler = SchemaCompiler(root: schema)
        let root = try compiler.compile(schema, path: "")
        self.init(nodes: compiler.builder.nodes, trie: compiler.builder.trie, root: root)
        // Checked once every node is final: a member may be a `$ref` still being compiled.
        for (members, path) in compiler.unions {
            var seen = Set<UInt8>()
            for member in members {
                let first = firstBytes(member)
                guard seen.isDisjoint(with: first) else {
                    throw JSONSchemaError(
                        path: path, reason: "alternatives must start with different characters (such as a string and null), so that the first byte picks one")
                }
                seen.formUnion(first)
            }
        }
    }
}

private struct SchemaCompiler {
    let rootSchema: JSONValue
    var builder = JSONGrammar.Builder()
    /// Nodes of `$ref` targets, so that a recursive reference points back at its own node.
    var references: [String: Int32] = [:]
    /// Schemas being compiled inside one another (`$ref` chains included).
    var depth = 0
    /// Key bytes put into tries so far: an object's tries hold each key once per optional
    /// property before it, so a schema of many optional properties costs their square.
    var keyBytes = 0

    /// Alternatives, and where they are, to check once compiled.
    var unions: [(members: [Int32], path: String)] = []

    static let maxDepth = 64
    static let maxKeyBytes = 1 << 22

    init(root: JSONValue) { rootSchema = root }

    mutating func compile(_ schema: JSONValue, path: String) throws(JSONSchemaError) -> Int32 {
        guard depth < Self.maxDepth else { throw JSONSchemaError(path: path, reason: "schemas nested (or $ref chains) deeper than \(Self.maxDepth)") }
        depth += 1
        defer { depth -= 1 }
        if case .bool(let flag) = schema {
            guard flag else { throw JSONSchemaError(path: path, reason: "the schema `false` allows nothing") }
            return JSONGrammar.anyValue
        }
        guard case .object(let pairs) = schema else { throw JSONSchemaError(path: path, reason: "a schema must be an object") }
        let keys = pairs.map(\.key)
        if let keyword = keys.first(where: { !JSONGrammar.keywords.contains($0) && !JSONGrammar.annotations.contains($0) }) {
            throw JSONSchemaError(path: path, reason: "the keyword '\(keyword.prefix(60))' is not supported")
        }
        let constraining = keys.filter { JSONGrammar.keywords.contains($0) }
        if let reference = schema["$ref"] {
            guard constraining.count == 1 else { throw JSONSchemaError(path: path, reason: "$ref next to other keywords is not supported") }
            return try compileReference(reference, path: path)
        }
        for keyword in ["anyOf", "oneOf"] {
            guard let members = schema[keyword] else { continue }
            guard constraining.count == 1 else { throw JSONSchemaError(path: path, reason: "\(keyword) next to other keywords is not supported") }
            guard case .array(let list) = members, !list.isEmpty else { throw JSONSchemaError(path: path, reason: "\(keyword) must be a non-empty array") }
            var nodes: [Int32] = []
            for (i, member) in list.enumerated() { nodes.append(try compile(member, path: "\(path)/\(keyword)/\(i)")) }
            // Members that start differently cannot both match a document: anyOf and oneOf agree.
            return union(nodes, path: path)
        }
        let types = try self.types(schema, path: path)
        if let values = schema["enum"] ?? schema["const"].map({ JSONValue.array([$0]) }) {
            guard case .array(let list) = values, !list.isEmpty else { throw JSONSchemaError(path: path, reason: "enum must be a non-empty array") }
            let root = builder.trie.newRoot()
            let kept = list.filter { value in types.isEmpty || types.contains { Self.matches(value, type: $0) } }
            guard !kept.isEmpty else { throw JSONSchemaError(path: path, reason: "no enum value has the schema's type") }
            for value in kept { builder.trie.insert(Array(value.serialized.utf8), from: root, value: 0) }
            return builder.add(.literals(root: root))
        }
        var kinds = types
        if kinds.isEmpty {
            if schema["properties"] != nil { kinds = ["object"] } else if schema["items"] != nil { kinds = ["array"] } else { return JSONGrammar.anyValue }
        }
        if kinds.contains("number") { kinds.removeAll { $0 == "integer" } }
        var nodes: [Int32] = []
        for kind in kinds { nodes.append(try compile(schema, type: kind, path: path)) }
        return nodes.count == 1 ? nodes[0] : union(nodes, path: path)
    }

    private mutating func compile(_ schema: JSONValue, type: String, path: String) throws(JSONSchemaError) -> Int32 {
        switch type {
        case "object":
            guard let properties = schema["properties"] else { return builder.add(.anyObject) }
            guard case .object(let ordered) = properties else { throw JSONSchemaError(path: "\(path)/properties", reason: "properties must be an object") }
            var required = Set<String>()
            if let list = schema["required"] {
                guard case .array(let names) = list, names.allSatisfy({ $0.string != nil }) else {
                    throw JSONSchemaError(path: "\(path)/required", reason: "required must be an array of strings")
                }
                required = Set(names.compactMap(\.string))
            }
            if let missing = required.subtracting(ordered.map(\.key)).sorted().first {
                throw JSONSchemaError(path: "\(path)/required", reason: "'\(missing.prefix(60))' is required but not among the properties")
            }
            var values: [Int32] = []
            for (key, value) in ordered { values.append(try compile(value, path: "\(path)/properties/\(key)")) }
            let count = ordered.count
            var closable = [Bool](repeating: true, count: count + 1)
            for i in stride(from: count - 1, through: 0, by: -1) { closable[i] = closable[i + 1] && !required.contains(ordered[i].key) }
            var keys: [Int32] = []
            for start in 0..<count {
                let root = builder.trie.newRoot()
                for i in start..<count {
                    let key = Array(JSONValue.quoted(ordered[i].key).utf8)
                    keyBytes += key.count
                    guard keyBytes <= Self.maxKeyBytes else {
                        throw JSONSchemaError(path: "\(path)/properties", reason: "too many optional properties to compile (mark some required)")
                    }
                    builder.trie.insert(key, from: root, value: Int32(i))
                    if required.contains(ordered[i].key) { break }
                }
                keys.append(root)
            }
            return builder.add(.object(.init(values: values, keys: keys, closable: closable)))
        case "array":
            var items = JSONGrammar.anyValue
            if let schema = schema["items"] { items = try compile(schema, path: "\(path)/items") }
            let minItems = try count(schema, "minItems", path: path) ?? 0, maxItems = try count(schema, "maxItems", path: path) ?? Int(Int32.max)
            guard minItems <= maxItems else { throw JSONSchemaError(path: path, reason: "minItems exceeds maxItems") }
            return builder.add(.array(items: items, minItems: minItems, maxItems: maxItems))
        case "string":
            let minLength = try count(schema, "minLength", path: path) ?? 0, maxLength = try count(schema, "maxLength", path: path) ?? Int(Int32.max)
            guard minLength <= maxLength else { throw JSONSchemaError(path: path, reason: "minLength exceeds maxLength") }
            return builder.add(.string(minLength: minLength, maxLength: maxLength))
        case "number", "integer": return builder.add(.number(integer: type == "integer"))
        case "boolean", "null":
            let root = builder.trie.newRoot()
            for word in type == "null" ? ["null"] : ["true", "false"] { builder.trie.insert(Array(word.utf8), from: root, value: 0) }
            return builder.add(.literals(root: root))
        default: throw JSONSchemaError(path: "\(path)/type", reason: "unknown type '\(type.prefix(60))'")
        }
    }

    private mutating func compileReference(_ reference: JSONValue, path: String) throws(JSONSchemaError) -> Int32 {
        guard let reference = reference.string else { throw JSONSchemaError(path: path, reason: "$ref must be a string") }
        if let node = references[reference] { return node }
        let parts = reference.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, parts[0] == "#", ["$defs", "definitions"].contains(parts[1]), let target = rootSchema[parts[1]]?[parts[2]] else {
            throw JSONSchemaError(path: path, reason: "$ref '\(reference.prefix(80))' is not a definition under #/$defs or #/definitions")
        }
        // A placeholder first, so that a reference to itself inside the definition finds it.
        let node = builder.add(.union([]))
        references[reference] = node
        let body = try compile(target, path: "/\(parts[1])/\(parts[2])")
        builder.nodes[Int(node)] = .union([body])
        return node
    }

    private mutating func union(_ members: [Int32], path: String) -> Int32 {
        unions.append((members, path))
        return builder.add(.union(members))
    }

    private func types(_ schema: JSONValue, path: String) throws(JSONSchemaError) -> [String] {
        switch schema["type"] {
        case nil: return []
        case .string(let type): return [type]
        case .array(let list) where !list.isEmpty && list.allSatisfy({ $0.string != nil }): return list.compactMap(\.string)
        default: throw JSONSchemaError(path: "\(path)/type", reason: "type must be a string or a non-empty array of strings")
        }
    }

    private func count(_ schema: JSONValue, _ key: String, path: String) throws(JSONSchemaError) -> Int? {
        guard let value = schema[key] else { return nil }
        guard case .number(let text) = value, let count = Int(text), (0..<Int(Int32.max)).contains(count) else {
            throw JSONSchemaError(path: "\(path)/\(key)", reason: "\(key) must be a non-negative integer")
        }
        return count
    }

    static func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("number", .number), ("array", .array), ("object", .object): return true
        case ("integer", .number(let text)): return !text.contains(where: { ".eE".contains($0) })
        default: return false
        }
    }
}
