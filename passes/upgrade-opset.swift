import SQIR

/// `upgrade-opset`: raises the model's default-domain opset to `to`, rewriting the ops whose
/// signature changed on the way (passes/support/OpsetAdapters.swift).
///
/// Matches every default-domain node (subgraphs included) and checks it against what sqopt
/// knows of the operator changes between opset 7 and 23:
/// - attributes that became inputs: Reduce* `axes` at 18 (ReduceSum at 13), Squeeze/Unsqueeze
///   `axes` and Split `split` at 13, Slice `starts/ends/axes` and TopK `k` at 10, Pad `pads`
///   and `value` and Clip `min`/`max` at 11, Dropout `ratio` at 12;
/// - Split gets `num_outputs` at 18 when it splits evenly; Softmax/LogSoftmax/Hardmax get an
///   explicit `axis` at 13 (refused unless it is the last axis); Scatter becomes
///   ScatterElements at 11; BatchNormalization loses `spatial=1` at 9;
/// - ops whose changes need no rewrite pass through; everything else (Upsample, Resize
///   across 11, GroupNormalization across 21, unknown ops) is refused with an error naming
///   the node, before anything is changed.
///
/// Rewrites the nodes, sets the opset import to `to` and raises the IR version to the one
/// that came with `to` if it was lower. Other domains are untouched. Lowering is refused.
///
/// Options: `to` (int, 21).
///
/// ```
/// // before (opset 17)
/// graph g(%x: f32[2,8]) -> (%y: f32[2,1]) {
///   %y = ReduceMean(%x) {axes = [-1], keepdims = 1} @mean
///   return %y
/// }
/// // after upgrade-opset{to=21}
/// graph g(%x: f32[2,8]) -> (%y: f32[2,1]) {
///   %mean_axes = const i64[1] [-1]
///   %y: f32[2,1] = ReduceMean(%x, %mean_axes) {keepdims = 1} @mean
///   return %y
/// }
/// ```
public struct UpgradeOpset: Pass {
    public static let name = "upgrade-opset"
    public static let summary = "Raise the default-domain opset, rewriting ops whose signature changed"
    public static let description = """
        Raises the model's default-domain opset import to `to` (7 to 23) and rewrites the ops \
        whose signature changed on the way: attributes that became inputs (Reduce* axes at 18, \
        ReduceSum/Squeeze/Unsqueeze axes and Split split at 13, Slice at 10, Pad and Clip at 11, \
        Dropout ratio at 12, TopK k at 10), Split num_outputs at 18, Softmax-family axis at 13, \
        Scatter -> ScatterElements. An op it does not know how to carry over is an error, raised \
        before anything changes. Raises the IR version to match; never lowers the opset.
        """
    public static let to = PassOption("to", default: 21, help: "target opset of the default ONNX domain (7 to 23)")
    public static let options = [to.declaration]
    public static let statistics = [
        PassStatisticDeclaration("nodes-rewritten", help: "nodes whose attributes, inputs or type changed"),
    ]

    public let target: Int

    public init(options: PassOptions) throws {
        target = options[Self.to]
        let range = OpsetAdapters.oldestSupportedOpset...OpsetAdapters.newestKnownOpset
        guard range.contains(target) else {
            throw PipelineError.invalidOptionValue(pass: Self.name, option: Self.to.name, value: String(target),
                                                   expected: "an opset from \(range.lowerBound) to \(range.upperBound)")
        }
    }

    /// Provides `.minimumOpset(n)` as `upgrade-opset{to=n}` (the pass manager runs it before
    /// a pass requiring opset n, e.g. quantize, on an older model).
    public static func options(providing requirement: PassRequirement) -> PassOptions? {
        guard case .minimumOpset(let version) = requirement,
              (OpsetAdapters.oldestSupportedOpset...OpsetAdapters.newestKnownOpset).contains(version) else { return nil }
        return PassOptions().setting(to, version)
    }

    public func run(on model: Model, context: PassContext) throws -> PassResult {
        let from = model.opsetVersion("") ?? 1
        guard from <= target else {
            throw IRError(reason: "upgrade-opset cannot lower the opset: the model imports opset \(from), to=\(target)")
        }
        guard from < target else { return .unchanged }
        guard from >= OpsetAdapters.oldestSupportedOpset else {
            throw IRError(reason: "upgrade-opset supports models importing opset \(OpsetAdapters.oldestSupportedOpset) or later (this one imports \(from))")
        }
        var rewrites: [OpsetAdapters.Rewrite] = []
        try plan(model.graph, from: from, into: &rewrites)
        for rewrite in rewrites { rewrite.apply(rewrite.node) }
        model.setOpsetVersion(target)
        model.irVersion = max(model.irVersion, OpsetAdapters.irVersion(forOpset: target))
        var statistics = PassStatistics()
        statistics.nodesRewritten = rewrites.count
        statistics[counter: "nodes-rewritten"] = rewrites.count
        return PassResult(changed: true, statistics: statistics)
    }

    /// Checks every node first (so a refusal leaves the model untouched).
    private func plan(_ graph: Graph, from: Int, into rewrites: inout [OpsetAdapters.Rewrite]) throws {
        for node in graph.nodes {
            for sub in node.subgraphs { try plan(sub, from: from, into: &rewrites) }
            guard node.domain.isEmpty || node.domain == "ai.onnx" else { continue }
            if let rewrite = try OpsetAdapters.plan(node, from: from, to: target) { rewrites.append(rewrite) }
        }
    }
}
