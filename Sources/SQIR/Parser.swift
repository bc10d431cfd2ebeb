/// Parses the IR text `IRPrinter` writes (docs/ir.md), so that `print(parse(text)) == text`
/// for every printed model.
///
/// ```swift
/// let model = try IRParser().parseModel(text)
/// let model = try IRParser(allowElidedConstants: true).parseModel(printed)  // `<N elements>` → zeros
/// ```
/// Values may be used before the line that defines them (the verifier, not the parser,
/// rejects such graphs), so that printed broken IR parses too. Errors carry line and column.
public struct IRParser {
    /// Accept `<N elements>` constants, filling them with zeros. Off by default: elided data
    /// silently becoming zeros is only right for structural tests and round trips.
    public var allowElidedConstants: Bool
    /// Named in error messages.
    public var file: String?

    public init(allowElidedConstants: Bool = false, file: String? = nil) {
        self.allowElidedConstants = allowElidedConstants
        self.file = file
    }

    /// A model: an optional `// ir_version N, opsets d=v, ...` header line (default IR 8,
    /// default-domain opset 17), then one graph.
    public func parseModel(_ text: String) throws -> Model {
        let parser = GraphParser(text, file: file, allowElidedConstants: allowElidedConstants)
        let header = try parser.parseHeader()
        let graph = try parser.parseGraph(parent: nil)
        try parser.expectEnd()
        let model = Model(graph: graph, irVersion: header?.irVersion ?? 8,
                          opsetImports: header?.opsets ?? [OpsetImport(domain: "", version: 17)])
        model.sourcePath = file
        return model
    }

    /// A single graph (a header line, if present, is ignored).
    public func parseGraph(_ text: String) throws -> Graph {
        let parser = GraphParser(text, file: file, allowElidedConstants: allowElidedConstants)
        _ = try parser.parseHeader()
        let graph = try parser.parseGraph(parent: nil)
        try parser.expectEnd()
        return graph
    }
}

/// The values visible in one graph body, plus uses of names not defined yet.
final class ParserScope {
    let parent: ParserScope?
    private(set) var defined: [String: Value] = [:]
    private(set) var pending: [String: (value: Value, offset: SourceOffset)] = [:]

    init(parent: ParserScope?) {
        self.parent = parent
    }

    func lookup(_ name: String) -> Value? {
        defined[name] ?? parent?.lookup(name)
    }

    /// The value named `name` for a use; a placeholder when it is not defined (yet).
    func use(_ name: String, at offset: SourceOffset) -> Value {
        if let v = lookup(name) { return v }
        if let p = pending[name] { return p.value }
        let placeholder = Value(name: name)
        pending[name] = (placeholder, offset)
        return placeholder
    }

    /// Defines `name`, adopting the placeholder of earlier uses; nil when already defined here.
    func define(_ name: String) -> Value? {
        guard defined[name] == nil else { return nil }
        let v = pending.removeValue(forKey: name)?.value ?? Value(name: name)
        defined[name] = v
        return v
    }

    /// Hands unresolved uses to the enclosing scope (a subgraph may use outer values defined
    /// later); returns them when there is no enclosing scope.
    func closeScope() -> [(name: String, offset: SourceOffset)] {
        guard let parent else { return pending.map { ($0.key, $0.value.offset) }.sorted { $0.offset.value < $1.offset.value } }
        for (name, entry) in pending {
            if let outer = parent.lookup(name) {
                for use in entry.value.uses { use.node.setInput(use.index, outer) }
            } else if let outerPending = parent.pending[name] {
                for use in entry.value.uses { use.node.setInput(use.index, outerPending.value) }
            } else {
                parent.pending[name] = entry
            }
        }
        pending.removeAll()
        return []
    }
}

/// Recursive-descent parser over one text (a class, so literal parsing can share the cursor).
final class GraphParser {
    var cursor: ParserCursor
    let allowElidedConstants: Bool
    private var scope: ParserScope?

    init(_ text: String, file: String?, allowElidedConstants: Bool) {
        cursor = ParserCursor(text, file: file)
        self.allowElidedConstants = allowElidedConstants
    }

    /// Reads comment lines before the graph; returns the `// ir_version ...` header if any.
    func parseHeader() throws -> (irVersion: Int, opsets: [OpsetImport])? {
        var header: (Int, [OpsetImport])?
        while true {
            while let c = cursor.peek, c == 32 || c == 9 || c == 10 || c == 13 { cursor.index += 1 }
            guard cursor.peek == 47, cursor.byte(at: cursor.index + 1) == 47 else { return header }
            let lineStart = cursor.offset
            let start = cursor.index
            while let c = cursor.peek, c != 10 { cursor.index += 1 }
            let line = String(decoding: cursor.bytes[start + 2..<cursor.index], as: UTF8.self).trimmingSpaces
            guard line.hasPrefix("ir_version ") else { continue }
            guard let parsed = GraphParser.headerFields(line) else {
                throw cursor.error("malformed model header; expected '// ir_version N, opsets domain=version, ...'", at: lineStart)
            }
            header = parsed
        }
    }

    /// `ir_version 8, opsets ai.onnx=17, com.microsoft=1`
    private static func headerFields(_ line: String) -> (Int, [OpsetImport])? {
        let parts = line.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingSpaces }
        guard parts.count >= 2, let ir = Int(parts[0].dropFirst("ir_version ".count)) else { return nil }
        guard parts[1] == "opsets" || parts[1].hasPrefix("opsets ") else { return nil }
        var entries = [String(parts[1].dropFirst("opsets".count)).trimmingSpaces] + parts.dropFirst(2)
        if entries == [""] { entries = [] }
        var opsets: [OpsetImport] = []
        for entry in entries {
            let pair = entry.split(separator: "=")
            guard pair.count == 2, let version = Int(pair[1]) else { return nil }
            opsets.append(OpsetImport(domain: String(pair[0]), version: version))
        }
        return (ir, opsets)
    }

    func expectEnd() throws {
        cursor.skipTrivia()
        guard cursor.atEnd else { throw cursor.error("unexpected \(cursor.describeNext()) after the graph") }
    }

    /// `graph NAME(inputs) -> (outputs) { lines; return values }`
    func parseGraph(parent: ParserScope?) throws -> Graph {
        cursor.skipTrivia()
        guard cursor.startsWithWord("graph") else { throw cursor.error("expected 'graph', found \(cursor.describeNext())") }
        cursor.index += 5
        cursor.skipTrivia()
        let graph = Graph(name: try cursor.name("a graph name"))
        let outerScope = scope
        let local = ParserScope(parent: parent)
        scope = local
        defer { scope = outerScope }

        try cursor.expect("(", "opening the graph inputs")
        for (name, type, offset) in try parseSignatureList() {
            guard let v = local.define(name) else { throw cursor.error("graph input '%\(name)' is listed twice", at: offset) }
            v.type = type
            graph.inputs.append(v)
        }
        try cursor.expect("->")
        try cursor.expect("(", "opening the graph outputs")
        let signatureAt = cursor.offset
        let signatureOutputs = try parseSignatureList()
        try cursor.expect("{", "opening the graph body")

        while true {
            cursor.skipTrivia()
            if cursor.startsWithWord("return") {
                cursor.index += 6
                break
            }
            guard !cursor.atEnd else { throw cursor.error("missing 'return' in graph '\(graph.name)'") }
            try parseLine(graph, local)
        }
        cursor.skipTrivia()
        var returned: [Value] = []
        if cursor.peek == 37 {
            repeat {
                cursor.skipTrivia()
                let at = cursor.offset
                returned.append(local.use(try valueName(), at: at))
            } while cursor.consume(",")
        }
        try cursor.expect("}", "closing graph '\(graph.name)'")

        guard returned.map(\.name) == signatureOutputs.map(\.name) else {
            throw cursor.error("graph '\(graph.name)' declares outputs (\(signatureOutputs.map { "%" + $0.name }.joined(separator: ", "))) but returns (\(returned.map { "%" + $0.name }.joined(separator: ", ")))", at: signatureAt)
        }
        for (value, declared) in zip(returned, signatureOutputs) where declared.type != nil {
            value.type = declared.type
        }
        graph.outputs = returned
        if let undefined = local.closeScope().first {
            throw cursor.error("use of undefined value '%\(undefined.name)'", at: undefined.offset)
        }
        return graph
    }

    /// `%a: type, %b` up to and including `)`.
    private func parseSignatureList() throws -> [(name: String, type: TensorType?, offset: SourceOffset)] {
        var out: [(String, TensorType?, SourceOffset)] = []
        if cursor.consume(")") { return out }
        repeat {
            cursor.skipTrivia()
            let at = cursor.offset
            let name = try valueName()
            let type = cursor.consume(":") ? try parseType() : nil
            out.append((name, type, at))
        } while cursor.consume(",")
        try cursor.expect(")")
        return out
    }

    /// `%name` (the `%` is required; no space after it).
    private func valueName() throws -> String {
        guard cursor.peek == 37 else { throw cursor.error("expected a value name ('%...'), found \(cursor.describeNext())") }
        cursor.index += 1
        return try cursor.name("a value name after '%'")
    }

    /// A constant line or a node line.
    private func parseLine(_ graph: Graph, _ local: ParserScope) throws {
        var outputs: [(name: String, type: TensorType?, offset: SourceOffset)?] = []
        let startsWithOmitted = cursor.peek == 95 && !(cursor.byte(at: cursor.index + 1).map(ParserCursor.isBareNameByte) ?? false)
            && cursor.byte(at: cursor.index + 1) != 40
        if cursor.peek == 37 || startsWithOmitted {
            repeat {
                cursor.skipTrivia()
                let at = cursor.offset
                if cursor.peek == 95 {
                    cursor.index += 1
                    outputs.append(nil)
                    continue
                }
                let name = try valueName()
                let type = cursor.consume(":") ? try parseType() : nil
                outputs.append((name, type, at))
            } while cursor.consume(",")
            try cursor.expect("=")
            cursor.skipTrivia()
            if cursor.startsWithWord("const"), outputs.count == 1, let target = outputs[0] {
                var probe = cursor
                probe.index += 5
                probe.skipTrivia()
                if probe.peek != 40 {
                    cursor.index += 5
                    return try parseConstant(target, graph, local)
                }
            }
        }
        try parseNode(outputs, graph, local)
    }

    private func parseConstant(_ target: (name: String, type: TensorType?, offset: SourceOffset),
                               _ graph: Graph, _ local: ParserScope) throws {
        let tensor = try parseTensorLiteral()
        // ONNX < IR 4 lists initializers among the inputs: the same value is both.
        if let input = graph.inputs.first(where: { $0.name == target.name }), input.constant == nil {
            input.constant = tensor
            graph.initializers.append(input)
            return
        }
        guard let v = local.define(target.name) else {
            throw cursor.error("value '%\(target.name)' is defined twice", at: target.offset)
        }
        v.constant = tensor
        v.type = target.type ?? tensor.type
        graph.initializers.append(v)
    }

    /// `Op(%a, _, %b) {attr = value, ...} @name` (outputs already read).
    private func parseNode(_ outputs: [(name: String, type: TensorType?, offset: SourceOffset)?],
                           _ graph: Graph, _ local: ParserScope) throws {
        cursor.skipTrivia()
        var opType = try cursor.name("an op type")
        var domain = ""
        if cursor.peek == 58, cursor.byte(at: cursor.index + 1) == 58 {
            cursor.index += 2
            domain = opType
            opType = try cursor.name("an op type after '::'")
        }
        try cursor.expect("(", "opening the operands of \(opType)")
        var inputs: [Value?] = []
        if !cursor.consume(")") {
            repeat {
                cursor.skipTrivia()
                let at = cursor.offset
                if cursor.peek == 95 {
                    cursor.index += 1
                    inputs.append(nil)
                } else {
                    inputs.append(local.use(try valueName(), at: at))
                }
            } while cursor.consume(",")
            try cursor.expect(")", "closing the operands of \(opType)")
        }
        var attributes: [Attribute] = []
        if cursor.consume("{"), !cursor.consume("}") {
            repeat {
                cursor.skipTrivia()
                let name = try cursor.name("an attribute name")
                try cursor.expect("=", "after attribute '\(name)'")
                attributes.append(Attribute(name, try parseAttributeValue()))
            } while cursor.consume(",")
            try cursor.expect("}", "closing the attributes of \(opType)")
        }
        var nodeName = ""
        if cursor.consume("@") { nodeName = try cursor.name("a node name after '@'") }
        var outputValues: [Value?] = []
        for output in outputs {
            guard let output else { outputValues.append(nil); continue }
            guard let v = local.define(output.name) else {
                throw cursor.error("value '%\(output.name)' is defined twice", at: output.offset)
            }
            v.type = output.type
            outputValues.append(v)
        }
        graph.append(Node(opType, domain: domain, name: nodeName, inputs: inputs, outputs: outputValues, attributes: attributes))
    }

    /// A graph-valued attribute, in a scope nested in the current one.
    func parseSubgraph() throws -> Graph {
        try parseGraph(parent: scope)
    }
}
