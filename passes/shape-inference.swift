import SQIR

/// `shape-inference`: fills in the static type (element type, rank, dims) of node outputs.
///
/// Matches every node, in order, of the ops transformer graphs use: elementwise ops with
/// numpy broadcasting, MatMul/Gemm, Reshape, Transpose, Concat, Split, Slice, Gather,
/// (Un)Squeeze, Reduce*, Expand, Range, Pad, Tile, norms, Softmax, Cast, Q/DQ and more
/// (passes/support/ShapeRules*.swift). Dims may be symbolic (`batch`, `seq`): symbols flow
/// through broadcasting, and through the shape arithmetic exporters write
/// (`Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1, 12, 64]))`), which is tracked
/// as shape values so the reshape's dims come out as `[batch, seq, 12, 64]`.
///
/// Rewrites nothing structurally: it sets `Value.type` where it was unknown and fills unknown
/// dims of known types. A declared type that disagrees with the inferred one is kept and
/// reported as a warning.
///
/// Options: none.
///
/// ```
/// // before
/// graph g(%x: f32[batch,seq,64], %w: f32[64,32]) -> (%y: f32[batch,seq,32]) {
///   %h = MatMul(%x, %w)
///   %y = Relu(%h)
///   return %y
/// }
/// // after shape-inference
/// graph g(%x: f32[batch,seq,64], %w: f32[64,32]) -> (%y: f32[batch,seq,32]) {
///   %h: f32[batch,seq,32] = MatMul(%x, %w)
///   %y: f32[batch,seq,32] = Relu(%h)
///   return %y
/// }
/// ```
public struct ShapeInference: Pass {
    public static let name = "shape-inference"
    public static let summary = "Infer element types and (symbolic) dims of node outputs"
    public static let description = """
        Walks the graph in order and sets the type of every node output it can infer: \
        elementwise ops with broadcasting, MatMul/Gemm, Reshape (through the Shape/Gather/\
        Concat arithmetic exporters write), Transpose, Concat, Split, Slice, Gather, \
        (Un)Squeeze, Reduce*, Expand, Range, norms, Softmax, Cast, Q/DQ and others. Symbolic \
        dims (batch, seq) are kept. Types already known are only refined (unknown dims filled); \
        a conflict is reported as a warning and the declared type kept.
        """
    public static let statistics = [
        PassStatisticDeclaration("values-typed", help: "outputs that had no type and got one"),
        PassStatisticDeclaration("dims-refined", help: "outputs whose unknown rank or dims were filled in"),
        PassStatisticDeclaration("conflicts", help: "declared types that disagree with the inferred ones (kept)"),
        PassStatisticDeclaration("untyped", help: "outputs still without a type afterwards"),
    ]

    public init(options: PassOptions) {}

    public func run(on model: Model, context: PassContext) throws -> PassResult {
        var statistics = PassStatistics()
        var state = ShapeInferenceState(opset: model.opsetVersion("") ?? 1)
        infer(model.graph, &state, context: context, statistics: &statistics)
        let changed = statistics[counter: "values-typed"] + statistics[counter: "dims-refined"] > 0
        return PassResult(changed: changed, statistics: statistics)
    }

    private func infer(_ graph: Graph, _ state: inout ShapeInferenceState, context: PassContext,
                       statistics: inout PassStatistics) {
        for node in graph.nodes {
            for sub in node.subgraphs { infer(sub, &state, context: context, statistics: &statistics) }
            let inferred = ShapeRules.infer(node, &state) ?? []
            for (i, output) in node.outputs.enumerated() {
                guard let output else { continue }
                if i < inferred.count, let type = inferred[i] {
                    merge(type, into: output, node: node, context: context, statistics: &statistics)
                }
                if output.type == nil { statistics.increment("untyped") }
            }
            state.propagateShapeValue(node)
        }
    }

    /// Sets or refines `value.type` with `inferred`; conflicts keep the declared type.
    private func merge(_ inferred: TensorType, into value: Value, node: Node, context: PassContext,
                       statistics: inout PassStatistics) {
        guard let declared = value.type else {
            value.type = inferred
            statistics.increment("values-typed")
            return
        }
        guard declared.dtype == inferred.dtype else {
            conflict(declared, inferred, value, node, context, &statistics)
            return
        }
        guard let inferredDims = inferred.dims else { return }
        guard let declaredDims = declared.dims else {
            value.type = inferred
            statistics.increment("dims-refined")
            return
        }
        guard declaredDims.count == inferredDims.count else {
            conflict(declared, inferred, value, node, context, &statistics)
            return
        }
        var merged = declaredDims
        for (i, (d, e)) in zip(declaredDims, inferredDims).enumerated() {
            switch (d, e) {
            case (.unknown, _): merged[i] = e
            case let (.known(a), .known(b)) where a != b:
                conflict(declared, inferred, value, node, context, &statistics)
                return
            default: break
            }
        }
        if merged != declaredDims {
            value.type = TensorType(declared.dtype, merged)
            statistics.increment("dims-refined")
        }
    }

    private func conflict(_ declared: TensorType, _ inferred: TensorType, _ value: Value, _ node: Node,
                          _ context: PassContext, _ statistics: inout PassStatistics) {
        statistics.increment("conflicts")
        context.warning("'\(value.name)' is declared \(declared) but infers as \(inferred); keeping the declared type", node: node)
    }
}
