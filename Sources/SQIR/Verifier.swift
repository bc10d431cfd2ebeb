/// Checks the structural invariants every pass must keep:
/// - every value is defined once (unique names within a graph scope);
/// - every node input is defined before use: a graph input, an initializer, an output of an
///   earlier node, or a value of an enclosing graph (for subgraphs);
/// - the node order is topological (so the graph is acyclic);
/// - graph outputs exist; use lists agree with the operands;
/// - initializer data matches dtype × shape (guaranteed by `Tensor`, checked again).
public struct Verifier {
    public var file: String?

    public init(file: String? = nil) {
        self.file = file
    }

    public func verify(_ model: Model) throws {
        try verify(model.graph)
    }

    public func verify(_ graph: Graph, outer: [String: Value] = [:]) throws {
        var defined = outer
        var localNames = Set<String>()

        func define(_ v: Value, _ what: String) throws {
            guard !v.name.isEmpty else {
                throw IRError(file: file, location: what, reason: "value has an empty name")
            }
            guard localNames.insert(v.name).inserted else {
                // ONNX < IR 4 lists initializers among the inputs: same object, allowed.
                if defined[v.name] === v { return }
                throw IRError(file: file, location: what, reason: "value '\(v.name)' is defined more than once")
            }
            defined[v.name] = v
        }

        for v in graph.inputs { try define(v, "graph '\(graph.name)' input '\(v.name)'") }
        for v in graph.initializers {
            try define(v, "initializer '\(v.name)'")
            guard let t = v.constant else {
                throw IRError(file: file, location: "initializer '\(v.name)'", reason: "initializer has no data")
            }
            if t.dtype != .string, let size = t.dtype.byteSize, t.byteCount != t.count * size {
                throw IRError(file: file, location: "initializer '\(v.name)'", reason: "data has \(t.byteCount) bytes, \(t.type) needs \(t.count * size)")
            }
        }

        for node in graph.nodes {
            let here = IRError.describe(node)
            guard node.graph === graph else {
                throw IRError(file: file, location: here, reason: "node is not attached to graph '\(graph.name)'")
            }
            for (i, input) in node.inputs.enumerated() {
                guard let input else { continue }
                guard let known = defined[input.name] else {
                    let defined = Self.producedLater(input, in: graph)
                    throw IRError(file: file, location: here, reason: defined
                        ? "input \(i) '\(input.name)' is used before it is defined (the graph has a cycle or is out of order)"
                        : "input \(i) '\(input.name)' is not defined")
                }
                guard known === input else {
                    throw IRError(file: file, location: here, reason: "input \(i) '\(input.name)' refers to a different value than the one defined under that name")
                }
                guard input.uses.contains(Use(node: node, index: i)) else {
                    throw IRError(file: file, location: here, reason: "use list of '\(input.name)' is missing this node")
                }
            }
            for sub in node.subgraphs {
                var verifier = self
                verifier.file = file
                try verifier.verify(sub, outer: defined)
            }
            for case let out? in node.outputs {
                guard out.producer === node else {
                    throw IRError(file: file, location: here, reason: "output '\(out.name)' does not point back to its producer")
                }
                try define(out, here)
            }
        }

        for out in graph.outputs {
            guard let known = defined[out.name], known === out else {
                throw IRError(file: file, location: "graph '\(graph.name)' output '\(out.name)'", reason: "graph output is not defined")
            }
        }
    }

    private static func producedLater(_ v: Value, in graph: Graph) -> Bool {
        graph.nodes.contains { n in n.outputs.contains { $0 === v } }
    }
}
