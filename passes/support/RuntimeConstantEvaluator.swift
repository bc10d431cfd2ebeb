import SQIR
import SQRuntime

/// Evaluates a node with the interpreter's kernels (SQRuntime): the node is copied into a
/// one-node model whose inputs are initializers, planned and run once. Returns nil when the
/// interpreter has no kernel for the node or cannot run it, so another evaluator (or no
/// folding) takes over.
public struct RuntimeConstantEvaluator: ConstantEvaluator {
    /// Largest tensor one evaluation may allocate.
    public var maxTensorBytes: Int

    public init(maxTensorBytes: Int = 256 << 20) {
        self.maxTensorBytes = maxTensorBytes
    }

    public func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor]? {
        guard node.subgraphs.isEmpty, !node.outputs.isEmpty else { return nil }
        let graph = Graph(name: "fold")
        var operands: [Value?] = []
        for (i, tensor) in inputs.enumerated() {
            guard let tensor else { operands.append(nil); continue }
            let value = Value(name: "input_\(i)", constant: tensor)
            graph.initializers.append(value)
            operands.append(value)
        }
        let outputs = node.outputs.indices.map { node.outputs[$0] == nil ? nil : Value(name: "output_\($0)") }
        graph.append(Node(node.opType, domain: node.domain, name: node.name, inputs: operands,
                          outputs: outputs, attributes: node.attributes))
        graph.outputs = outputs.compactMap { $0 }
        let domain = node.domain
        var imports = [OpsetImport(domain: "", version: opset)]
        if !domain.isEmpty { imports.append(OpsetImport(domain: domain, version: 1)) }
        let model = Model(graph: graph, irVersion: OpsetAdapters.irVersion(forOpset: opset), opsetImports: imports)
        let results: [String: Tensor]
        do {
            let plan = try ExecutionPlan(model: model, options: PlanOptions(maxTensorBytes: maxTensorBytes))
            results = try plan.run(inputs: [:])
        } catch {
            return nil
        }
        var tensors: [Tensor] = []
        for output in outputs {
            guard let output else { tensors.append(Tensor.zeros(.float, shape: [0])); continue }
            guard let tensor = results[output.name] else { return nil }
            tensors.append(tensor)
        }
        return tensors
    }
}
