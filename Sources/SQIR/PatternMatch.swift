/// A successful match: the root node and the captured values and nodes.
public struct Match {
    public let root: Node
    /// Captured values by name.
    public let values: [String: Value]
    /// Captured nodes by name (op patterns with a capture name).
    public let nodes: [String: Node]
    /// Every node the pattern matched, root first.
    public let matchedNodes: [Node]

    /// The value captured as `name`.
    public subscript(_ name: String) -> Value? { values[name] }

    /// The node captured as `name`.
    public func node(_ name: String) -> Node? { nodes[name] }

    /// Constant data of the value captured as `name`.
    public func constant(_ name: String) -> Tensor? { values[name]?.knownConstant }

    /// True when every output of the matched nodes other than the root is used only by
    /// matched nodes and is not a graph output, so replacing the root leaves all of them dead
    /// (nothing outside the match would keep a copy of the computation alive).
    public var isSelfContained: Bool {
        let matched = Set(matchedNodes.map(ObjectIdentifier.init))
        for node in matchedNodes where node !== root {
            guard let graph = node.graph else { return false }
            for case let out? in node.outputs {
                if graph.outputs.contains(where: { $0 === out }) { return false }
                if out.uses.contains(where: { !matched.contains(ObjectIdentifier($0.node)) }) { return false }
            }
        }
        return true
    }
}

/// Matches patterns against the graph. Pure: never mutates anything.
public enum PatternMatcher {
    /// Matches `pattern` with `node` as its root (the pattern describes the node's output;
    /// value predicates and the capture apply to output 0).
    public static func match(_ pattern: Pattern, root node: Node) -> Match? {
        var state = State()
        guard matchRoot(pattern, node, &state) else { return nil }
        return Match(root: node, values: state.values, nodes: state.nodes, matchedNodes: state.matched)
    }

    /// Matches `pattern` against `value` (any producer).
    public static func match(_ pattern: Pattern, value: Value) -> Match? {
        var state = State()
        guard matchValue(pattern, value, &state), let root = value.producer else { return nil }
        return Match(root: root, values: state.values, nodes: state.nodes, matchedNodes: state.matched)
    }

    struct State {
        var values: [String: Value] = [:]
        var nodes: [String: Node] = [:]
        var matched: [Node] = []
    }

    private static func matchRoot(_ pattern: Pattern, _ node: Node, _ state: inout State) -> Bool {
        switch pattern.kind {
        case .op(let op):
            guard let out = node.output(0) ?? node.outputs.compactMap({ $0 }).first else {
                return matchNode(op, node, capture: pattern.capture, &state)
            }
            guard pattern.valuePredicates.allSatisfy({ $0(out) }) else { return false }
            guard bind(pattern.capture, out, &state) else { return false }
            return matchNode(op, node, capture: pattern.capture, &state)
        case .oneOf(let alternatives):
            for alternative in alternatives {
                let saved = state
                if matchRoot(alternative, node, &state) { return true }
                state = saved
            }
            return false
        case .any, .absent, .constant:
            return false
        }
    }

    static func matchValue(_ pattern: Pattern, _ value: Value?, _ state: inout State) -> Bool {
        if case .oneOf(let alternatives) = pattern.kind {
            for alternative in alternatives {
                let saved = state
                if matchValue(alternative, value, &state) {
                    // An omitted operand matched `.absent`: nothing to check or capture.
                    guard let value else { return true }
                    if pattern.valuePredicates.allSatisfy({ $0(value) }) && bind(pattern.capture, value, &state) { return true }
                }
                state = saved
            }
            return false
        }
        if case .absent = pattern.kind { return value == nil }
        guard let value else { return false }
        guard pattern.valuePredicates.allSatisfy({ $0(value) }) else { return false }
        switch pattern.kind {
        case .any:
            break
        case .constant(let accept):
            guard let tensor = value.knownConstant, accept(tensor) else { return false }
        case .op(let op):
            guard let node = value.producer else { return false }
            if let index = op.outputIndex, node.output(index) !== value { return false }
            guard matchNode(op, node, capture: pattern.capture, &state) else { return false }
        case .absent, .oneOf:
            return false
        }
        return bind(pattern.capture, value, &state)
    }

    private static func matchNode(_ op: OpPattern, _ node: Node, capture: String?, _ state: inout State) -> Bool {
        guard op.opTypes.isEmpty || op.opTypes.contains(node.opType) else { return false }
        guard node.domain == op.domain else { return false }
        guard op.nodePredicates.allSatisfy({ $0(node) }) else { return false }
        if let name = capture {
            if let bound = state.nodes[name], bound !== node { return false }
            state.nodes[name] = node
        }
        state.matched.append(node)
        guard let operands = op.operands else { return true }
        // Trailing omitted inputs may be written as empty names or left out: both are nil here,
        // so a node with fewer inputs than operands matches when the extra operands accept
        // `.absent` (`.omittable(p)`).
        var inputs = node.inputs
        while let last = inputs.last, last == nil, inputs.count > operands.count { inputs.removeLast() }
        if inputs.count < operands.count { inputs += [Value?](repeating: nil, count: operands.count - inputs.count) }
        guard inputs.count == operands.count else { return false }
        let saved = state
        if zip(operands, inputs).allSatisfy({ matchValue($0, $1, &state) }) { return true }
        state = saved
        guard op.commutative, operands.count == 2 else { return false }
        if matchValue(operands[0], inputs[1], &state) && matchValue(operands[1], inputs[0], &state) { return true }
        state = saved
        return false
    }

    private static func bind(_ name: String?, _ value: Value, _ state: inout State) -> Bool {
        guard let name else { return true }
        if let bound = state.values[name] { return bound === value }
        state.values[name] = value
        return true
    }
}

extension Value {
    /// Constant data if known: an initializer's (or folded value's) tensor, or the `value*`
    /// attribute of a `Constant` node producing this value.
    public var knownConstant: Tensor? {
        if let constant { return constant }
        guard let node = producer, node.isOp("Constant"), node.attributes.count == 1,
              let attribute = node.attributes.first else { return nil }
        switch (attribute.name, attribute.value) {
        case ("value", .tensor(let t)): return t
        case ("value_float", .float(let f)): return Tensor(scalar: f)
        case ("value_floats", .floats(let fs)): return Tensor(shape: [fs.count], values: fs)
        case ("value_int", .int(let i)): return Tensor(scalar: Int64(i))
        case ("value_ints", .ints(let xs)): return Tensor(shape: [xs.count], values: xs.map(Int64.init))
        case ("value_string", .string(let s)): return try? Tensor(strings: [Array(s.utf8)], shape: [])
        case ("value_strings", .strings(let ss)): return try? Tensor(strings: ss.map { Array($0.utf8) }, shape: [ss.count])
        default: return nil
        }
    }
}

extension Tensor {
    /// The single element as Double when the tensor has exactly one (any rank); else nil.
    public var scalarDouble: Double? {
        guard count == 1, dtype != .string else { return nil }
        return doubleValues().first
    }

    /// True when every element equals `value` (false for empty and string tensors).
    public func isSplat(_ value: Double) -> Bool {
        guard count > 0, dtype != .string else { return false }
        return doubleValues().allSatisfy { $0 == value }
    }
}
