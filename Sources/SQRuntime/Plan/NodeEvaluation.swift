import SQIR

/// sqopt's one constant evaluator: a node computed once, with the interpreter's kernels
/// (the op table, `OpRegistry`), on inputs that are all known. Both users go through here:
/// plan building (`Lowering` folds every node whose inputs are all constant) and the
/// `fold-constants` pass (SQPasses' `RuntimeConstantEvaluator`). The results are the bits a
/// run of the node would give.
public enum NodeEvaluation {
    /// The kernel for `node` from the op table, given the imported `opset` of its domain and
    /// the constant inputs the factory may prepare (`constantOf`). Throws an `IRError` naming
    /// the node when the op is unsupported, has subgraphs, or its attributes are invalid.
    static func kernel(for node: Node, opset: Int, constantOf: @escaping (Value) -> Tensor?,
                       packBudget: PackBudget?) throws -> any OpKernel {
        guard let factory = OpRegistry.factory(opType: node.opType, domain: node.domain) else {
            throw IRError(node: node, reason: "unsupported operator '\(node.opType)' (domain '\(ONNXDomain.displayName(node.domain))', opset \(opset))")
        }
        guard node.subgraphs.isEmpty else {
            throw IRError(node: node, reason: "operators with subgraphs are not supported")
        }
        do {
            return try factory(NodeLowering(node: node, opset: opset, constantOf: constantOf, packBudget: packBudget))
        } catch {
            throw located(error, at: IRError.describe(node))
        }
    }

    /// Runs `kernel` (made for `node`) once on constant `inputs`: one tensor per present node
    /// output, nil for an omitted one. Errors name the node.
    static func run(_ kernel: any OpKernel, of node: Node, inputs: [Tensor?], maxTensorBytes: Int) throws -> [Tensor?] {
        let results: [Tensor?]
        do {
            results = try kernel.run(inputs, BufferPool(maxTensorBytes: maxTensorBytes))
        } catch {
            throw located(error, at: IRError.describe(node))
        }
        return try node.outputs.indices.map { i in
            guard node.outputs[i] != nil else { return nil }
            guard i < results.count, let t = results[i] else {
                throw IRError(node: node, reason: "the kernel did not produce output \(i)")
            }
            return t
        }
    }

    /// Evaluates `node` on `inputs` (one per node input, nil for an omitted one): one tensor
    /// per present output, nil for an omitted output. `opset` is the imported version of the
    /// node's domain. Throws an `IRError` naming the node when it cannot be computed
    /// (unsupported op, invalid attributes or inputs, a tensor over `maxTensorBytes`).
    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int, maxTensorBytes: Int) throws -> [Tensor?] {
        var byValue: [ObjectIdentifier: Tensor] = [:]
        for (value, tensor) in zip(node.inputs, inputs) {
            if let value, let tensor { byValue[ObjectIdentifier(value)] = tensor }
        }
        let known = byValue
        let kernel = try kernel(for: node, opset: opset, constantOf: { known[ObjectIdentifier($0)] }, packBudget: nil)
        return try run(kernel, of: node, inputs: inputs, maxTensorBytes: maxTensorBytes)
    }
}
