import SQIR

/// What `smooth` did to one group (for diagnostics, `--report` and tests).
public struct SmoothGroupReport: Codable, Sendable, Equatable {
    /// The activation X the group reads (its name before smoothing).
    public var activation: String
    /// Names of the group's MatMul/Gemm nodes.
    public var layers: [String]
    /// The node `1/s` was folded into, or nil when a Mul was inserted.
    public var foldedInto: String?
    /// The inserted `Mul(X, 1/s)` node, when not folded.
    public var mulNode: String?
    /// Why folding was not legal (when a Mul was inserted).
    public var foldRefusal: String?
    public var alpha: Double
    /// max |X_j| per channel before and after smoothing (the paper's Figure 4).
    public var channelAbsMaxBefore: [Float]
    public var channelAbsMaxAfter: [Float]
    /// Smallest and largest factor s_j.
    public var factorMin: Float
    public var factorMax: Float
    /// float16/bfloat16 models: elements of the rewritten weights, norm parameters or `1/s`
    /// that were beyond the type's range and clamped to ±max (nil when none).
    public var clampedElements: Int?

    public var folded: Bool { foldedInto != nil }
}

/// Applies SmoothQuant to a graph: per group, computes `s` from the calibration statistics,
/// scales the weights' input channels by `s`, folds `1/s` into the producer or inserts one
/// shared `Mul(X, 1/s)`, and updates the statistics of the smoothed activation.
///
/// Collect, then mutate: the groups are found first; each group's rewrite touches only its
/// own linears' weight operands and its own producer's parameters (new initializers; a
/// tensor shared with another use is never changed).
public struct Smoother {
    /// α for every group (`alphaForGroup` overrides per group, e.g. `alpha=auto`).
    public var alpha: Double
    public var scope: SmoothScope
    /// Also smooth groups made only of output heads (the LM head).
    public var includeHeads: Bool
    /// Optional per-group α choice; returns nil to use `alpha`.
    public var alphaForGroup: ((SmoothGroup, ActivationStatistics) throws -> Double?)?

    /// `scope` and `includeHeads` default to `smooth`'s declared options.
    public init(alpha: Double, scope: SmoothScope = Smooth.scopeOption.defaultValue,
                includeHeads: Bool = Smooth.lmHeadOption.defaultValue) {
        self.alpha = alpha
        self.scope = scope
        self.includeHeads = includeHeads
    }

    /// Smooths `graph` in place. Groups without per-channel statistics are skipped and
    /// listed in `skipped` (value name and reason).
    public func run(on graph: Graph, statistics: inout CalibrationStatistics) throws
        -> (groups: [SmoothGroupReport], skipped: [(activation: String, reason: String)]) {
        // Drained one group at a time: a group holds its linears' weight tensors, which must
        // go as soon as the smoothed ones replace them (for a model whose weights are mapped
        // from external data, that also drops the input's pages; MappedRange in SQONNX).
        var pending = Array(SmoothGroupFinder.groups(in: graph, scope: scope, includeHeads: includeHeads).reversed())
        var reports: [SmoothGroupReport] = []
        var skipped: [(String, String)] = []
        while let found = pending.popLast() {
            let group = found.refreshed()  // current weights (see `apply`)
            let name = group.activation.name
            guard let stats = statistics[name] else {
                skipped.append((name, "no calibration statistics for '\(name)'"))
                continue
            }
            guard stats.hasChannels, stats.channelMax.count == group.channels else {
                skipped.append((name, "no per-channel statistics of \(group.channels) channels for '\(name)'"))
                continue
            }
            let groupAlpha = try alphaForGroup?(group, stats) ?? alpha
            reports.append(try apply(group, stats: stats, alpha: groupAlpha, in: graph, statistics: &statistics))
        }
        return (reports, skipped)
    }

    /// The factors for a group at `alpha`.
    public static func factors(for group: SmoothGroup, stats: ActivationStatistics, alpha: Double) -> [Float] {
        SmoothFactors.compute(activationAbsMax: stats.channelAbsMax,
                              weightAbsMax: SmoothFactors.groupWeightAbsMax(group.layers), alpha: alpha)
    }

    /// `group` must be fresh (`refreshed()`): an earlier group's fold may have rescaled the
    /// weight of one of its linears (down_proj's fold into up_proj's output channels).
    private func apply(_ group: SmoothGroup, stats: ActivationStatistics, alpha: Double,
                       in graph: Graph, statistics: inout CalibrationStatistics) throws -> SmoothGroupReport {
        let x = group.activation
        let s = Self.factors(for: group, stats: stats, alpha: alpha)
        let smoothed = try stats.dividingChannels(by: s)
        var report = SmoothGroupReport(
            activation: x.name, layers: group.layers.map(\.node.name), alpha: alpha,
            channelAbsMaxBefore: stats.channelAbsMax, channelAbsMaxAfter: smoothed.channelAbsMax,
            factorMin: s.min() ?? 1, factorMax: s.max() ?? 1)

        var clamped = 0
        for layer in group.layers {
            let (scaled, over) = layer.weightScalingInputChannelsCountingClamps(by: s)
            clamped += over
            let w = graph.addInitializer(scaled, name: layer.weight.name + "_smoothed")
            layer.node.setInput(1, w)
        }
        graph.dropReplacedInitializers(group.layers.map(\.weight))

        if let target = group.foldTarget {
            clamped += try fold(target, dividingBy: s, in: graph)
            statistics[x.name] = smoothed
            report.foldedInto = target.node.name
        } else {
            // Mul's operands share one type: 1/s in the group's float type (the weights' type).
            let floatType = group.layers.first?.floatType ?? .float
            let (inverse, over) = Tensor.narrowing(s.map { 1 / $0 }, shape: [s.count], to: floatType)
            clamped += over
            let scale = graph.addInitializer(inverse, name: x.name + "_smooth_scale")
            let anchor = firstNode(of: group.layers.map(\.node), in: graph)
            let mul = graph.makeNode("Mul", name: x.name + "_smooth", inputs: [x, scale], before: anchor)
            guard let y = mul.output(0) else { throw IRError(node: mul, reason: "Mul has no output") }
            y.type = x.type
            for layer in group.layers { layer.node.setInput(0, y) }
            statistics[y.name] = smoothed
            report.mulNode = mul.name
            report.foldRefusal = group.foldRefusal
        }
        report.clampedElements = clamped > 0 ? clamped : nil
        return report
    }

    /// Returns the number of elements clamped to a half type's range.
    private func fold(_ target: FoldTarget, dividingBy s: [Float], in graph: Graph) throws -> Int {
        switch target {
        case .layerNorm(let node):
            let gamma = try replaceConstant(of: node, at: 1, dividingBy: s, in: graph)
            return gamma + (node.input(2) != nil ? try replaceConstant(of: node, at: 2, dividingBy: s, in: graph) : 0)
        case .rmsNorm(let node):
            return try replaceConstant(of: node, at: 1, dividingBy: s, in: graph)
        case .skipNorm(let node):
            let gamma = try replaceConstant(of: node, at: 2, dividingBy: s, in: graph)
            let hasBeta = node.opType == "SkipLayerNormalization" && node.input(3) != nil
            return gamma + (hasBeta ? try replaceConstant(of: node, at: 3, dividingBy: s, in: graph) : 0)
        case .scale(let mul, let gammaIndex):
            return try replaceConstant(of: mul, at: gammaIndex, dividingBy: s, in: graph)
        case .scaleShift(let mul, let gammaIndex, let add, let betaIndex):
            return try replaceConstant(of: mul, at: gammaIndex, dividingBy: s, in: graph)
                + replaceConstant(of: add, at: betaIndex, dividingBy: s, in: graph)
        case .linearOutput(_, let node):
            // Read the weight now: an earlier group may already have scaled its rows.
            guard let linear = LinearLayer(node), linear.outputChannels == s.count else {
                throw IRError(node: node, reason: "expected a linear layer with \(s.count) output channels")
            }
            let old = linear.weight
            let (scaled, clamped) = linear.weightScalingOutputChannelsCountingClamps(by: s.map { 1 / $0 })
            node.setInput(1, graph.addInitializer(scaled, name: old.name + "_smoothed"))
            graph.dropReplacedInitializers([old])
            return clamped
        }
    }

    /// Points operand `index` of `node` at a new initializer holding the old constant / s
    /// (element i is channel i: the constant has exactly one element per channel), in the
    /// constant's own float type; returns how many elements were clamped to that type's range.
    private func replaceConstant(of node: Node, at index: Int, dividingBy s: [Float], in graph: Graph) throws -> Int {
        guard let v = node.input(index), let t = v.constant, let values = t.floatElements(), t.count == s.count else {
            throw IRError(node: node, reason: "operand \(index) is not a per-channel float constant of \(s.count) elements")
        }
        let (scaled, clamped) = Tensor.narrowing((0..<s.count).map { values[$0] / s[$0] }, shape: t.shape, to: t.dtype)
        node.setInput(index, graph.addInitializer(scaled, name: v.name + "_smoothed"))
        graph.dropReplacedInitializers([v])
        return clamped
    }

    private func firstNode(of candidates: [Node], in graph: Graph) -> Node? {
        let ids = Set(candidates.map(ObjectIdentifier.init))
        return graph.nodes.first { ids.contains(ObjectIdentifier($0)) }
    }
}
