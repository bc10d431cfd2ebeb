import SQIR
import SQRuntime

/// Evaluates a node with the interpreter's kernels: SQRuntime's `NodeEvaluation`, the same
/// evaluation plan building uses to fold constants, so a value folded by `fold-constants` has
/// the bits the interpreter would compute. Returns nil when the interpreter has no kernel for
/// the node or cannot run it, so another evaluator (or no folding) takes over.
public struct RuntimeConstantEvaluator: ConstantEvaluator {
    /// Largest tensor one evaluation may allocate.
    public var maxTensorBytes: Int

    public init(maxTensorBytes: Int = 256 << 20) {
        self.maxTensorBytes = maxTensorBytes
    }

    public func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor]? {
        guard node.subgraphs.isEmpty, !node.outputs.isEmpty else { return nil }
        // `opset` is the default domain's; other domains (contrib ops) are taken at version 1.
        let results: [Tensor?]
        do {
            results = try NodeEvaluation.evaluate(node, inputs: inputs, opset: node.domain.isEmpty ? opset : 1,
                                                  maxTensorBytes: maxTensorBytes)
        } catch {
            return nil
        }
        // An omitted optional output gets a placeholder the caller skips.
        return results.map { $0 ?? Tensor.zeros(.float, shape: [0]) }
    }
}
