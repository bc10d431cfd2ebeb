import SQIR

/// Raises a model's default-domain opset for the QDQ forms `quantize` writes (opset 21:
/// blocked Q/DQ, `output_dtype`), rewriting the one family of ops whose form changed
/// between opset 13 and 21: `Reduce*` (except ReduceSum, changed at 13) take `axes` as an
/// input from opset 18. Every other op sqopt's models use is unchanged over 13…21.
/// Models older than opset 13 are refused (run the general `upgrade-opset` pass first).
public enum OpsetRaise {
    public static let quantizedOpset = 21
    /// ONNX IR version that introduced opset 21.
    public static let quantizedIRVersion = 10

    static let reducesWithAxesInputFrom18: Set<String> = [
        "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
        "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare",
    ]

    /// Throws when `raise` would refuse `model` (checked before a pass mutates anything).
    public static func checkConvertible(_ model: Model, to target: Int = quantizedOpset) throws {
        let current = model.opsetVersion("") ?? 1
        if current < target && current < 13 {
            throw IRError(file: model.sourcePath, reason: "the model imports opset \(current); quantize needs opset \(target) and converts only from opset 13 or newer (run upgrade-opset first)")
        }
    }

    /// Raises `model` to at least `target`; returns the number of nodes rewritten.
    @discardableResult
    public static func raise(_ model: Model, to target: Int = quantizedOpset) throws -> Int {
        let current = model.opsetVersion("") ?? 1
        model.irVersion = max(model.irVersion, quantizedIRVersion)
        guard current < target else { return 0 }
        try checkConvertible(model, to: target)
        var rewritten = 0
        if current < 18 && target >= 18 {
            rewritten = try moveReduceAxesToInput(model.graph)
        }
        model.setOpsetVersion(target)
        return rewritten
    }

    private static func moveReduceAxesToInput(_ graph: Graph) throws -> Int {
        var count = 0
        for node in graph.nodes {
            for sub in node.subgraphs { count += try moveReduceAxesToInput(sub) }
            guard node.domain.isEmpty || node.domain == "ai.onnx",
                  reducesWithAxesInputFrom18.contains(node.opType),
                  let attribute = node[attribute: "axes"] else { continue }
            guard let axes = attribute.ints else {
                throw IRError(node: node, reason: "attribute 'axes' is not a list of ints")
            }
            let axesValue = graph.addInitializer(Tensor(shape: [axes.count], values: axes.map(Int64.init)), name: node.name + "_axes")
            node.setInput(1, axesValue)
            node[attribute: "axes"] = nil
            count += 1
        }
        return count
    }
}
