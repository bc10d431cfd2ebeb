/// A dataflow graph: inputs, initializers, nodes in topological order, outputs.
///
/// The graph owns its nodes; values are shared objects linked through `producer` and `uses`.
/// Mutate through the methods here (insert, erase, replaceAllUses), which keep use lists
/// and the node order consistent; passes "collect, then mutate" and leave dead nodes to `dce`.
public final class Graph {
    public var name: String
    public var docString: String = ""
    /// Graph inputs in signature order (ONNX < IR 4 may list initializers here too).
    public var inputs: [Value] = []
    public var outputs: [Value] = []
    /// Values with constant data, in file order.
    public var initializers: [Value] = []
    /// Sparse initializers, kept as packed SparseTensorProto bytes (not interpreted).
    public var sparseInitializers: [[UInt8]] = []
    /// Fields of GraphProto sqopt does not model, re-emitted verbatim.
    public var unknownFields: [UInt8] = []
    /// Enclosing graph for subgraphs (If/Loop bodies may use outer values).
    public internal(set) weak var parent: Graph?
    public private(set) var nodes: [Node] = []

    public init(name: String = "main") {
        self.name = name
    }

    // MARK: node list

    /// Appends `node` at the end of the node list.
    @discardableResult
    public func append(_ node: Node) -> Node {
        adopt(node)
        nodes.append(node)
        return node
    }

    /// Inserts `node` right before `anchor` (which must be in this graph).
    @discardableResult
    public func insert(_ node: Node, before anchor: Node) -> Node {
        adopt(node)
        let i = nodes.firstIndex { $0 === anchor } ?? nodes.count
        nodes.insert(node, at: i)
        return node
    }

    /// Inserts `node` right after `anchor` (which must be in this graph).
    @discardableResult
    public func insert(_ node: Node, after anchor: Node) -> Node {
        adopt(node)
        let i = nodes.firstIndex { $0 === anchor }.map { $0 + 1 } ?? nodes.count
        nodes.insert(node, at: i)
        return node
    }

    private func adopt(_ node: Node) {
        node.graph = self
        for g in node.subgraphs { g.parent = self }
    }

    /// Removes `node`. Its outputs must have no uses left (checked; throws naming the node)
    /// unless `force`, and none may be a graph output.
    public func erase(_ node: Node, force: Bool = false) throws {
        for case let out? in node.outputs {
            if !force && out.hasUses {
                throw IRError(node: node, reason: "cannot erase: output '\(out.name)' still has \(out.uses.count) use(s)")
            }
            if outputs.contains(where: { $0 === out }) {
                throw IRError(node: node, reason: "cannot erase: output '\(out.name)' is a graph output")
            }
        }
        try eraseNodes([node])
    }

    /// Removes many nodes in one sweep (linear time). Use lists of their inputs are updated;
    /// callers are responsible for their outputs being dead.
    public func eraseNodes(_ doomed: [Node]) throws {
        let ids = Set(doomed.map(ObjectIdentifier.init))
        for node in doomed {
            node.dropAllInputs()
            node.graph = nil
        }
        nodes.removeAll { ids.contains(ObjectIdentifier($0)) }
    }

    /// Replaces the node list wholesale (e.g. after a topological sort). Every node must
    /// already belong to this graph.
    public func reorder(_ newOrder: [Node]) {
        nodes = newOrder
    }

    // MARK: values

    /// Redirects every use of `old` to `new` (graph outputs included, by reference).
    /// Graph output names never change: when `old` is a graph output, `new` is left as it is
    /// and the output slot points at `new`; `keepOutputName` renames `new` to `old.name`.
    public func replaceAllUses(of old: Value, with new: Value, keepOutputName: Bool = true) {
        guard old !== new else { return }
        for use in old.uses {
            use.node.setInput(use.index, new)
        }
        for i in outputs.indices where outputs[i] === old {
            outputs[i] = new
            if keepOutputName && !isInputOrInitializer(new) {
                let oldName = old.name
                old.name = uniqueName(oldName + "_replaced")
                new.name = oldName
            }
        }
    }

    private func isInputOrInitializer(_ v: Value) -> Bool {
        inputs.contains { $0 === v } || initializers.contains { $0 === v }
    }

    /// Adds an initializer value holding `tensor`, with a fresh name based on `name`.
    @discardableResult
    public func addInitializer(_ tensor: Tensor, name: String) -> Value {
        let v = Value(name: uniqueName(name), constant: tensor)
        initializers.append(v)
        return v
    }

    /// Removes initializers that no node (in this graph or a subgraph) uses and that are
    /// not graph inputs or outputs. Returns how many were removed.
    @discardableResult
    public func removeUnusedInitializers() -> Int {
        let before = initializers.count
        initializers.removeAll { v in
            !v.hasUses && !outputs.contains { $0 === v } && !inputs.contains { $0 === v }
        }
        return before - initializers.count
    }

    // MARK: names

    /// All values defined in this graph (inputs, initializers, node outputs), by name.
    public func valuesByName() -> [String: Value] {
        var map: [String: Value] = [:]
        for v in inputs { map[v.name] = v }
        for v in initializers { map[v.name] = v }
        for n in nodes { for case let v? in n.outputs { map[v.name] = v } }
        return map
    }

    /// Whether a value of this graph or an enclosing one is named `name` (a scan; no table
    /// is built, so passes that add thousands of nodes stay linear per name).
    public func definesValue(named name: String) -> Bool {
        var g: Graph? = self
        while let graph = g {
            if graph.inputs.contains(where: { $0.name == name }) || graph.initializers.contains(where: { $0.name == name }) {
                return true
            }
            for n in graph.nodes { for case let v? in n.outputs where v.name == name { return true } }
            g = graph.parent
        }
        return false
    }

    /// A value name not yet used in this graph, built from `base`.
    public func uniqueName(_ base: String) -> String {
        if !definesValue(named: base) { return base }
        var taken = Set(valuesByName().keys)
        var g = parent
        while let outer = g {
            taken.formUnion(outer.valuesByName().keys)
            g = outer.parent
        }
        if !taken.contains(base) { return base }
        var i = 1
        while taken.contains("\(base)_\(i)") { i += 1 }
        return "\(base)_\(i)"
    }

    /// A fresh node name built from `base`.
    public func uniqueNodeName(_ base: String) -> String {
        if !nodes.contains(where: { $0.name == base }) { return base }
        let taken = Set(nodes.map(\.name))
        if !taken.contains(base) { return base }
        var i = 1
        while taken.contains("\(base)_\(i)") { i += 1 }
        return "\(base)_\(i)"
    }

    /// Creates a node with fresh output values named after `name` and appends it before
    /// `anchor` (or at the end). Returns the node.
    @discardableResult
    public func makeNode(_ opType: String, domain: String = "", name: String,
                         inputs: [Value?], outputCount: Int = 1,
                         attributes: [Attribute] = [], before anchor: Node? = nil) -> Node {
        let nodeName = uniqueNodeName(name)
        var outs: [Value] = []
        for i in 0..<outputCount {
            let v = Value(name: uniqueName(outputCount == 1 ? "\(nodeName)_output" : "\(nodeName)_output_\(i)"))
            outs.append(v)
        }
        let node = Node(opType, domain: domain, name: nodeName, inputs: inputs, outputs: outs, attributes: attributes)
        if let anchor { insert(node, before: anchor) } else { append(node) }
        return node
    }

    // MARK: order

    /// Nodes sorted so that every node comes after the producers of its inputs (stable:
    /// keeps the current order where it is already valid). Throws naming a node on a cycle.
    public func topologicallySorted() throws -> [Node] {
        var indexOf: [ObjectIdentifier: Int] = [:]
        for (i, n) in nodes.enumerated() { indexOf[ObjectIdentifier(n)] = i }
        var pending = [Int](repeating: 0, count: nodes.count)
        var consumers = [[Int]](repeating: [], count: nodes.count)
        for (i, n) in nodes.enumerated() {
            for producer in Set(n.allInputsIncludingSubgraphs.compactMap { $0.producer.map(ObjectIdentifier.init) }) {
                guard let p = indexOf[producer] else { continue }
                pending[i] += 1
                consumers[p].append(i)
            }
        }
        var ready = (0..<nodes.count).filter { pending[$0] == 0 }.reversed() as [Int]
        var order: [Node] = []
        order.reserveCapacity(nodes.count)
        // Min-index first keeps the original order wherever it is valid.
        var heap = MinHeap(ready)
        ready.removeAll()
        while let i = heap.pop() {
            order.append(nodes[i])
            for c in consumers[i] {
                pending[c] -= 1
                if pending[c] == 0 { heap.push(c) }
            }
        }
        if order.count != nodes.count {
            let stuck = nodes.indices.first { pending[$0] > 0 }.map { nodes[$0] }
            throw IRError(location: stuck.map(IRError.describe), reason: "the graph has a cycle")
        }
        return order
    }

    /// Re-sorts `nodes` topologically in place.
    public func sortTopologically() throws {
        nodes = try topologicallySorted()
    }
}

extension Node {
    /// Inputs of this node plus outer values used by nodes inside its subgraphs.
    var allInputsIncludingSubgraphs: [Value] {
        var out = inputs.compactMap { $0 }
        for g in subgraphs { out += g.outerValuesUsed() }
        return out
    }
}

extension Graph {
    /// Values used inside this graph (or nested subgraphs) that are defined outside it.
    func outerValuesUsed() -> [Value] {
        let local = valuesByName()
        var out: [Value] = []
        for n in nodes {
            for v in n.allInputsIncludingSubgraphs where local[v.name] !== v {
                out.append(v)
            }
        }
        return out
    }
}

/// A tiny binary min-heap of indices.
struct MinHeap {
    private var items: [Int] = []
    init(_ initial: [Int]) { for x in initial { push(x) } }
    mutating func push(_ x: Int) {
        items.append(x)
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if items[p] <= items[i] { break }
            items.swapAt(p, i)
            i = p
        }
    }
    mutating func pop() -> Int? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count && items[l] < items[m] { m = l }
                if r < items.count && items[r] < items[m] { m = r }
                if m == i { break }
                items.swapAt(m, i)
                i = m
            }
        }
        return top
    }
}
