/// A rewrite as data: a root pattern and a function building the replacement.
///
/// `rewrite` receives the match and a `RewriteBuilder`; it returns one replacement per output
/// of the root node (an existing value or one the builder made; nil only for an output with
/// no uses), or nil to decline. Nothing touches the graph until the rewrite has returned a
/// replacement: nodes and constants made through the builder are staged and dropped when
/// the rewrite declines. The name is the rule's one-line comment, e.g. `"x*1 -> x"`; it keys
/// the application counters.
///
/// ```swift
/// RewriteRule("Mul(x, 1) -> x", .op("Mul", [.any("x"), .scalar(1)], commutative: true)) { match, _ in
///     [match["x"]]
/// }
/// ```
public struct RewriteRule: Sendable {
    public typealias Rewrite = @Sendable (Match, RewriteBuilder) throws -> [Value?]?

    public let name: String
    public let pattern: Pattern
    let rewrite: Rewrite

    public init(_ name: String, _ pattern: Pattern, rewrite: @escaping Rewrite) {
        self.name = name
        self.pattern = pattern
        self.rewrite = rewrite
    }
}

/// An ordered list of rules indexed by root op type. Sets compose with `+`; for a node, rules
/// are tried in list order and the first that applies wins.
public struct RuleSet: Sendable {
    public private(set) var rules: [RewriteRule] = []
    private var byOpType: [String: [Int]] = [:]
    private var anyOp: [Int] = []

    public init(_ rules: [RewriteRule]) {
        for rule in rules { append(rule) }
    }

    public mutating func append(_ rule: RewriteRule) {
        let index = rules.count
        rules.append(rule)
        if let types = rule.pattern.rootOpTypes {
            for type in types { byOpType[type, default: []].append(index) }
        } else {
            anyOp.append(index)
        }
    }

    public static func + (a: RuleSet, b: RuleSet) -> RuleSet {
        var out = a
        for rule in b.rules { out.append(rule) }
        return out
    }

    /// Rules whose root can match `node`, in list order.
    func candidates(for node: Node) -> [RewriteRule] {
        let indices = byOpType[node.opType] ?? []
        if anyOp.isEmpty { return indices.map { rules[$0] } }
        return (indices + anyOp).sorted().map { rules[$0] }
    }
}

/// Builds a rewrite's replacement without touching the graph: nodes and initializers are
/// staged and inserted (before the root) only when the rule's rewrite returns a replacement.
public final class RewriteBuilder {
    public let graph: Graph
    public let model: Model?
    public let root: Node
    public let context: PassContext?
    private(set) var stagedNodes: [Node] = []
    private(set) var stagedInitializers: [Value] = []
    private(set) var modifications: [(Node, (Node) -> Void)] = []
    private var reservedValueNames = Set<String>()
    private var reservedNodeNames = Set<String>()

    init(graph: Graph, model: Model?, root: Node, context: PassContext?) {
        self.graph = graph
        self.model = model
        self.root = root
        self.context = context
    }

    /// The default-domain opset of the model (nil when unknown).
    public var opset: Int? { model?.opsetVersion("") }

    /// Stages a node; its outputs get fresh names from `name` (default: root name + op).
    @discardableResult
    public func node(_ opType: String, domain: String = "", _ inputs: [Value?], attributes: [Attribute] = [],
                     outputCount: Int = 1, name: String? = nil) -> Node {
        stage(opType, domain: domain, inputs, attributes: attributes, outputCount: outputCount, name: name).node
    }

    /// Stages a single-output node and returns its output value (typed as `type`).
    public func op(_ opType: String, domain: String = "", _ inputs: [Value?], attributes: [Attribute] = [],
                   name: String? = nil, type: TensorType? = nil) -> Value {
        let out = stage(opType, domain: domain, inputs, attributes: attributes, outputCount: 1, name: name).outputs[0]
        out.type = type
        return out
    }

    private func stage(_ opType: String, domain: String, _ inputs: [Value?], attributes: [Attribute],
                       outputCount: Int, name: String?) -> (node: Node, outputs: [Value]) {
        let base = name ?? (root.name.isEmpty ? opType : "\(root.name)/\(opType)")
        let nodeName = reserveNodeName(base)
        var outputs: [Value] = []
        for i in 0..<outputCount {
            outputs.append(Value(name: reserveValueName(outputCount == 1 ? "\(nodeName)_output" : "\(nodeName)_output_\(i)")))
        }
        let node = Node(opType, domain: domain, name: nodeName, inputs: inputs, outputs: outputs, attributes: attributes)
        stagedNodes.append(node)
        return (node, outputs)
    }

    /// Stages an initializer holding `tensor`, named from `name` (default: the root's first
    /// output name + `_constant`, made unique).
    public func constant(_ tensor: Tensor, name: String? = nil) -> Value {
        let base = name ?? ((root.output(0)?.name ?? root.name) + "_constant")
        let v = Value(name: reserveValueName(base), constant: tensor)
        stagedInitializers.append(v)
        return v
    }

    /// Stages an in-place change of an existing node (applied on commit).
    public func modify(_ node: Node, _ change: @escaping (Node) -> Void) {
        modifications.append((node, change))
    }

    /// Leaves a remark for the user (e.g. why a match was declined).
    public func remark(_ message: String, node: Node? = nil) {
        context?.remark(message, node: node ?? root)
    }

    private func reserveValueName(_ base: String) -> String {
        Self.reserve(base, in: &reservedValueNames, unique: graph.uniqueName)
    }

    private func reserveNodeName(_ base: String) -> String {
        Self.reserve(base, in: &reservedNodeNames, unique: graph.uniqueNodeName)
    }

    /// A name free in the graph (`unique`) and not yet handed out by this builder (`reserved`):
    /// nothing is added to the graph until the rewrite returns, so the graph alone cannot tell.
    private static func reserve(_ base: String, in reserved: inout Set<String>, unique: (String) -> String) -> String {
        var candidate = unique(base)
        var k = 1
        while reserved.contains(candidate) {
            candidate = unique("\(base)_\(k)")
            k += 1
        }
        reserved.insert(candidate)
        return candidate
    }

    /// Undoes staging: detaches staged nodes from the values they use.
    func discard() {
        for node in stagedNodes { node.dropAllInputs() }
        stagedNodes.removeAll()
        stagedInitializers.removeAll()
        modifications.removeAll()
    }

    /// True when replacing `old` by `new` keeps graph input/output names: a graph output may
    /// only be replaced by a node output that is not itself a graph output.
    func replacementKeepsSignature(_ old: Value, _ new: Value) -> Bool {
        guard graph.outputs.contains(where: { $0 === old }) else { return true }
        let isStaged = stagedNodes.contains { $0.outputs.contains { $0 === new } }
        if isStaged { return true }
        guard new.producer != nil else { return false }
        return !graph.outputs.contains { $0 === new }
    }
}
