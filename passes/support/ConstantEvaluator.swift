import SQIR

/// Evaluates one node whose inputs are all constant (`fold-constants` calls it).
///
/// Returns one tensor per node output, or nil when this evaluator cannot compute the node
/// (unknown op, dtype it does not handle, output larger than its limit); throws only when
/// the node is invalid (the error names it).
public protocol ConstantEvaluator: Sendable {
    func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor]?
}

/// The `PassContext` slot through which a caller (a test, the driver) replaces the evaluator
/// `fold-constants` uses.
public enum ConstantEvaluatorKey: PassContextKey {
    public typealias Value = any ConstantEvaluator
}

/// Tries evaluators in order; the first that answers wins.
public struct ChainedConstantEvaluator: ConstantEvaluator {
    public let evaluators: [any ConstantEvaluator]

    public init(_ evaluators: [any ConstantEvaluator]) {
        self.evaluators = evaluators
    }

    public func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor]? {
        for evaluator in evaluators {
            if let out = try evaluator.evaluate(node, inputs: inputs, opset: opset) { return out }
        }
        return nil
    }
}
