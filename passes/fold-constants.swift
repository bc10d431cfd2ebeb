import SQIR

/// `fold-constants`: evaluates nodes whose inputs are all constant and stores their outputs
/// as initializers.
///
/// Matches, in topological order (so chains fold in one run): `Constant` nodes; nodes whose
/// inputs are all known constants; `Shape` and `Size` of values whose static shape is known.
/// Skips nodes with a graph output among their outputs, `DequantizeLinear` unless
/// `fold-dequantize` (folding it would undo weight quantization), random ops, and nodes in
/// other domains.
///
/// Rewrites: each output value keeps its name and becomes an initializer; the node is erased.
/// An output is kept only if it has at most `max-elements` elements or no more than the
/// largest input (so transposing a weight folds, an Expand to a huge mask does not).
/// Evaluation uses the `ConstantEvaluator` in the context (`ConstantEvaluatorKey`), else the
/// interpreter's kernels (`RuntimeConstantEvaluator`: SQRuntime's `NodeEvaluation`, the one
/// evaluator plan building folds with too), so a folded value has the bits a run computes.
///
/// Options: `max-elements` (int, 65536), `fold-dequantize` (bool, false).
///
/// ```
/// // before
/// graph g(%x: f32[2,4]) -> (%y: f32[2,2,2]) {
///   %two = const i64[1] [2]
///   %minus1 = const i64[1] [-1]
///   %shape = Concat(%minus1, %two, %two) {axis = 0}
///   %y = Reshape(%x, %shape)
///   return %y
/// }
/// // after fold-constants,dce
/// graph g(%x: f32[2,4]) -> (%y: f32[2,2,2]) {
///   %shape = const i64[3] [-1, 2, 2]
///   %y: f32[2,2,2] = Reshape(%x, %shape)
///   return %y
/// }
/// ```
public struct FoldConstants: Pass {
    public static let name = "fold-constants"
    public static let summary = "Evaluate nodes whose inputs are all constant into initializers"
    public static let description = """
        Evaluates, in topological order, Constant nodes, nodes whose inputs are all constant, \
        and Shape/Size of values with a known static shape, and turns their outputs into \
        initializers (same names). Nodes are evaluated with the interpreter's kernels, as a run \
        would compute them. Nodes producing a graph output, random ops, other domains, \
        and DequantizeLinear (unless fold-dequantize) are left alone. An output is kept only if \
        it has at most max-elements elements or no more than the largest input.
        """
    public static let maxElements = PassOption("max-elements", default: 65536,
                                               help: "largest folded output (elements) when it is larger than every input")
    public static let foldDequantize = PassOption("fold-dequantize", default: false,
                                                  help: "also fold DequantizeLinear of constant weights (undoes weight quantization)")
    public static let options = [maxElements.declaration, foldDequantize.declaration]
    public static let statistics = [
        PassStatisticDeclaration("folded", help: "nodes evaluated into initializers"),
        PassStatisticDeclaration("too-large", help: "nodes not folded because an output exceeded max-elements"),
    ]

    static let neverFolded: Set<String> = ["RandomNormal", "RandomUniform", "RandomNormalLike",
                                           "RandomUniformLike", "Multinomial", "Bernoulli", "Dropout"]

    public let maxElementCount: Int
    public let foldsDequantize: Bool

    public init(options: PassOptions) throws {
        maxElementCount = options[Self.maxElements]
        foldsDequantize = options[Self.foldDequantize]
        guard maxElementCount >= 0 else {
            throw PipelineError.invalidOptionValue(pass: Self.name, option: Self.maxElements.name,
                                                   value: String(maxElementCount), expected: "a count >= 0")
        }
    }

    public func run(on model: Model, context: PassContext) throws -> PassResult {
        let evaluator = context[ConstantEvaluatorKey.self] ?? RuntimeConstantEvaluator()
        var statistics = PassStatistics()
        try fold(model.graph, opset: model.opsetVersion("") ?? 1, evaluator: evaluator,
                 context: context, statistics: &statistics)
        return PassResult(changed: statistics[counter: "folded"] > 0, statistics: statistics)
    }

    private func fold(_ graph: Graph, opset: Int, evaluator: any ConstantEvaluator,
                      context: PassContext, statistics: inout PassStatistics) throws {
        var folded: [Node] = []
        for node in graph.nodes {
            for sub in node.subgraphs {
                try fold(sub, opset: opset, evaluator: evaluator, context: context, statistics: &statistics)
            }
            guard isCandidate(node, in: graph), let inputs = constantInputs(of: node),
                  let outputs = try evaluate(node, inputs, opset: opset, evaluator: evaluator) else { continue }
            let largestInput = inputs.compactMap { $0?.count }.max() ?? 0
            if !node.isOp("Constant"), outputs.contains(where: { $0.count > maxElementCount && $0.count > largestInput }) {
                statistics.increment("too-large")
                context.remark("not folded: an output has more than max-elements=\(maxElementCount) elements", node: node)
                continue
            }
            for (i, tensor) in outputs.enumerated() {
                guard let value = node.output(i) else { continue }
                node.setOutput(i, nil)
                value.constant = tensor
                value.type = tensor.type
                graph.initializers.append(value)
            }
            folded.append(node)
            statistics.increment("folded")
        }
        try graph.eraseDetachingSubgraphs(folded)
    }

    private func isCandidate(_ node: Node, in graph: Graph) -> Bool {
        guard node.domain.isEmpty, node.subgraphs.isEmpty else { return false }
        guard !FoldConstants.neverFolded.contains(node.opType) else { return false }
        if node.opType == "DequantizeLinear" && !foldsDequantize { return false }
        guard !node.outputs.isEmpty else { return false }
        return !node.outputs.contains { out in out.map { v in graph.outputs.contains { $0 === v } } ?? false }
    }

    /// The input tensors when every present input is constant (Shape/Size: when the input's
    /// static shape is known, a stand-in tensor of that shape is not needed; see `evaluate`).
    private func constantInputs(of node: Node) -> [Tensor?]? {
        if (node.opType == "Shape" || node.opType == "Size"), let x = node.input(0), x.knownConstant == nil {
            return x.type?.staticShape != nil ? [nil] : nil
        }
        var tensors: [Tensor?] = []
        for input in node.inputs {
            guard let input else { tensors.append(nil); continue }
            guard let t = input.knownConstant else { return nil }
            tensors.append(t)
        }
        return tensors
    }

    private func evaluate(_ node: Node, _ inputs: [Tensor?], opset: Int,
                          evaluator: any ConstantEvaluator) throws -> [Tensor]? {
        if node.isOp("Constant") { return node.output(0)?.knownConstant.map { [$0] } }
        if inputs.count == 1, inputs[0] == nil, let shape = node.input(0)?.type?.staticShape {
            // Shape/Size of a non-constant value with a static shape.
            if node.opType == "Size" { return [Tensor(scalar: Int64(shape.reduce(1, *)))] }
            let (lo, hi) = ShapeKernels.shapeRange(rank: shape.count, start: node.int("start"), end: node.int("end"))
            let dims = lo < hi ? shape[lo..<hi].map(Int64.init) : []
            return [Tensor(shape: [dims.count], values: dims)]
        }
        guard let outputs = try evaluator.evaluate(node, inputs: inputs, opset: opset),
              outputs.count == node.outputs.count else { return nil }
        return outputs
    }
}
