import SQIR

/// Where a group's `1/s` can be folded: a producer that applies a per-channel affine map
/// last, so dividing its parameters by `s` divides its output channels by `s`.
public enum FoldTarget {
    /// `LayerNormalization(x, γ, β?)`: γ ← γ/s, β ← β/s.
    case layerNorm(Node)
    /// `RMSNormalization` / `SimplifiedLayerNormalization(x, γ)`: γ ← γ/s.
    case rmsNorm(Node)
    /// onnxruntime's `SkipLayerNormalization(x, skip, γ, β?, bias?)` or
    /// `SkipSimplifiedLayerNormalization(x, skip, γ, bias?)`: γ ← γ/s (and β ← β/s). Only the
    /// normalized output 0 changes; the residual sum (output 3) and the pre-norm bias do not.
    case skipNorm(Node)
    /// `Mul(y, γ)` with a per-channel constant γ at `gammaIndex`: γ ← γ/s.
    case scale(mul: Node, gammaIndex: Int)
    /// A decomposed norm's tail `Add(Mul(y, γ), β)`: γ ← γ/s and β ← β/s.
    case scaleShift(mul: Node, gammaIndex: Int, add: Node, betaIndex: Int)
    /// `Mul(a, L(x))` where `L` is a linear layer whose output only this Mul reads (SwiGLU's
    /// `silu(gate) · up` feeding down_proj): L's output channel j ← ×1/s_j.
    case linearOutput(mul: Node, linear: Node)

    /// The node whose parameters change (the last one of the chain).
    public var node: Node {
        switch self {
        case .layerNorm(let n), .rmsNorm(let n), .skipNorm(let n): return n
        case .scale(let mul, _): return mul
        case .scaleShift(_, _, let add, _): return add
        case .linearOutput(_, let linear): return linear
        }
    }
}

/// A smoothing group: an activation X and every linear layer reading it. One factor per
/// channel of X is shared by the whole group.
public struct SmoothGroup {
    public let activation: Value
    public let layers: [LinearLayer]
    /// Where `1/s` folds; nil when a `Mul(X, 1/s)` must be inserted (see `foldRefusal`).
    public let foldTarget: FoldTarget?
    /// Why folding is not legal (when `foldTarget` is nil).
    public let foldRefusal: String?
    /// X is produced by a normalization (explicit, or a decomposed norm's per-channel tail).
    public let isNormOutput: Bool

    public var channels: Int { layers[0].inputChannels }

    /// The same group with its linears matched again (current weights).
    func refreshed() -> SmoothGroup {
        SmoothGroup(activation: activation, layers: layers.map { LinearLayer($0.node) ?? $0 },
                    foldTarget: foldTarget, foldRefusal: foldRefusal, isNormOutput: isNormOutput)
    }
}

/// Which groups `smooth` touches.
public enum SmoothScope: String, Sendable, CaseIterable {
    /// Linears whose input is a normalization's output (the paper's q/k/v, fc1, gate/up).
    case norms
    /// Linears whose input's producer absorbs `1/s` for free: the norms of `norms`, plus
    /// producers that fold without a run-time op (SwiGLU's `Mul(silu(gate), up)` feeding
    /// down_proj folds into up_proj's output channels). Never inserts a `Mul`.
    case foldable
    /// Every linear layer; inputs without a foldable producer get a run-time `Mul(1/s)`
    /// (as TensorRT-LLM does for o_proj / down_proj).
    case all
}

public enum SmoothGroupFinder {
    /// The groups of `graph` in node order. Linears whose activation's channel count does not
    /// match the weight are skipped (a malformed or exotic graph, not ours to smooth), and so
    /// are groups made only of output heads (the LM head stays float, so smoothing its input
    /// buys nothing) unless `includeHeads`.
    public static func groups(in graph: Graph, scope: SmoothScope = Smooth.scopeOption.defaultValue,
                              includeHeads: Bool = Smooth.lmHeadOption.defaultValue) -> [SmoothGroup] {
        let heads = includeHeads ? [] : Set(W8A8Quantizer.outputHeads(in: graph).map(ObjectIdentifier.init))
        var byActivation: [ObjectIdentifier: [LinearLayer]] = [:]
        var order: [Value] = []
        for layer in LinearLayer.all(in: graph) {
            let key = ObjectIdentifier(layer.activation)
            if byActivation[key] == nil { order.append(layer.activation) }
            byActivation[key, default: []].append(layer)
        }
        let graphOutputs = Set(graph.outputs.map(ObjectIdentifier.init))
        var groups: [SmoothGroup] = []
        for x in order {
            guard let layers = byActivation[ObjectIdentifier(x)],
                  let k = layers.first?.inputChannels,
                  layers.allSatisfy({ $0.inputChannels == k }),
                  !layers.allSatisfy({ heads.contains(ObjectIdentifier($0.node)) }) else { continue }
            if let last = x.type?.dims?.last, let known = last.value, known != k { continue }
            let norm = isNormOutput(x, channels: k)
            guard scope != .norms || norm else { continue }
            let (target, refusal) = foldTarget(for: x, layers: layers, channels: k,
                                               isGraphOutput: graphOutputs.contains(ObjectIdentifier(x)))
            guard scope != .foldable || norm || target != nil else { continue }
            groups.append(SmoothGroup(activation: x, layers: layers, foldTarget: target,
                                      foldRefusal: refusal, isNormOutput: norm))
        }
        return groups
    }

    /// Decides whether `1/s` can fold into X's producer. Legal only when every use of X is
    /// one of the group's linears (post-LN BERT also feeds the residual Add: folding there
    /// would change the residual) and the producer's last step is a per-channel affine map.
    static func foldTarget(for x: Value, layers: [LinearLayer], channels: Int,
                           isGraphOutput: Bool) -> (FoldTarget?, String?) {
        if isGraphOutput { return (nil, "'\(x.name)' is a graph output") }
        let groupNodes = Set(layers.map { ObjectIdentifier($0.node) })
        for use in x.uses where !(use.index == 0 && groupNodes.contains(ObjectIdentifier(use.node))) {
            return (nil, "'\(x.name)' also feeds \(IRError.describe(use.node))")
        }
        var x = x
        if let wide = castSource(x) {
            // A mixed-precision graph: float32 norm → Cast(float16) → linears. Cast is
            // elementwise, so 1/s folds into the norm when the Cast is its only reader.
            guard wide.uses.count == 1, wide.producer?.graph?.outputs.contains(where: { $0 === wide }) != true else {
                return (nil, "'\(wide.name)' (cast to '\(x.name)') has other readers")
            }
            x = wide
        }
        guard let producer = x.producer else { return (nil, "'\(x.name)' is a graph input") }
        if let target = affineTarget(producer, output: x, channels: channels) { return (target, nil) }
        return (nil, "\(IRError.describe(producer)) cannot absorb a per-channel scale")
    }

    /// The fold target when `producer` (defining `output`) ends in a per-channel affine map.
    static func affineTarget(_ producer: Node, output: Value, channels: Int) -> FoldTarget? {
        guard producer.output(0) === output else { return nil }
        if producer.isOp("LayerNormalization") {
            guard lastAxisNorm(producer, output), perChannelConstant(producer.input(1), channels),
                  producer.input(2) == nil || perChannelConstant(producer.input(2), channels) else { return nil }
            return .layerNorm(producer)
        }
        if isRMSNorm(producer) {
            guard lastAxisNorm(producer, output), perChannelConstant(producer.input(1), channels) else { return nil }
            return .rmsNorm(producer)
        }
        if isSkipNorm(producer) {
            let hasBeta = producer.opType == "SkipLayerNormalization" && producer.input(3) != nil
            guard perChannelConstant(producer.input(2), channels),
                  !hasBeta || perChannelConstant(producer.input(3), channels) else { return nil }
            return .skipNorm(producer)
        }
        if let gamma = scaleOperand(producer, channels: channels) {
            return .scale(mul: producer, gammaIndex: gamma)
        }
        if producer.isOp("Add"), producer.inputs.count == 2 {
            for betaIndex in 0..<2 where perChannelConstant(producer.input(betaIndex), channels) {
                guard let y = producer.input(1 - betaIndex), y.constant == nil, let mul = y.producer,
                      y.uses.count == 1, mul.graph?.outputs.contains(where: { $0 === y }) != true,
                      let gamma = scaleOperand(mul, channels: channels) else { continue }
                return .scaleShift(mul: mul, gammaIndex: gamma, add: producer, betaIndex: betaIndex)
            }
        }
        if producer.isOp("Mul"), producer.inputs.count == 2 {
            for i in 0..<2 {
                guard let b = producer.input(i), b.constant == nil, b.uses.count == 1,
                      let linearNode = b.producer, let linear = LinearLayer(linearNode),
                      linear.outputChannels == channels, linearNode.output(0) === b,
                      linearNode.graph?.outputs.contains(where: { $0 === b }) != true else { continue }
                return .linearOutput(mul: producer, linear: linearNode)
            }
        }
        return nil
    }

    /// X comes out of a normalization: an explicit norm op, a per-channel `Mul(γ)`, or a
    /// per-channel `Add(Mul(·, γ), β)` (a decomposed norm's tail).
    public static func isNormOutput(_ x: Value, channels: Int) -> Bool {
        let normOutput = castSource(x) ?? x
        guard let producer = normOutput.producer else { return false }
        if producer.isOp("LayerNormalization") || isRMSNorm(producer) || isSkipNorm(producer) {
            return producer.output(0) === normOutput  // a Skip norm's output 3 is the residual sum, not normalized
        }
        if scaleOperand(producer, channels: channels) != nil { return true }
        if producer.isOp("Add"), producer.inputs.count == 2 {
            for i in 0..<2 where perChannelConstant(producer.input(i), channels) {
                if let mul = producer.input(1 - i)?.producer, scaleOperand(mul, channels: channels) != nil { return true }
            }
        }
        return false
    }

    /// The input of a float-to-float `Cast` producing `x` (float32 ↔ float16/bfloat16, as
    /// mixed-precision exporters put around norms); nil when `x` is not such a Cast's output.
    static func castSource(_ x: Value) -> Value? {
        guard let cast = x.producer, cast.isOp("Cast"), let input = cast.input(0), input.constant == nil,
              let to = cast.int("to").flatMap({ DType(rawValue: Int32($0)) }), to.isSmoothableFloat,
              let from = input.type?.dtype ?? input.producer.flatMap(producedFloatType), from.isSmoothableFloat
        else { return nil }
        return input
    }

    /// Norm ops produce their input's float type; used when a value has no declared type.
    private static func producedFloatType(_ node: Node) -> DType? {
        guard node.isOp("LayerNormalization") || isRMSNorm(node) || node.isOp("Mul") || node.isOp("Add") else { return nil }
        return node.inputs.lazy.compactMap { $0?.type?.dtype ?? $0?.constant?.dtype }.first { $0.isSmoothableFloat }
    }

    static func isRMSNorm(_ node: Node) -> Bool {
        (node.opType == "RMSNormalization" || node.opType == "SimplifiedLayerNormalization")
            && (node.domain.isEmpty || node.domain == "com.microsoft")
    }

    /// onnxruntime's Skip norms (always over the last axis).
    static func isSkipNorm(_ node: Node) -> Bool {
        (node.opType == "SkipLayerNormalization" || node.opType == "SkipSimplifiedLayerNormalization")
            && node.domain == "com.microsoft"
    }

    /// The norm normalizes over the last axis only, so γ is per channel of the last axis.
    static func lastAxisNorm(_ node: Node, _ output: Value) -> Bool {
        let axis = node.int("axis") ?? -1
        if axis == -1 { return true }
        if let rank = output.type?.rank ?? node.input(0)?.type?.rank { return axis == rank - 1 }
        return false
    }

    /// Input index of the per-channel constant γ when `node` is `Mul(y, γ)` with y computed.
    static func scaleOperand(_ node: Node, channels: Int) -> Int? {
        guard node.isOp("Mul"), node.inputs.count == 2 else { return nil }
        for i in 0..<2 where perChannelConstant(node.input(i), channels) && node.input(1 - i)?.constant == nil {
            return i
        }
        return nil
    }

    /// A float (float32, float16, bfloat16) constant with exactly `channels` elements laid out along the last axis
    /// (`[C]`, `[1, C]`, `[1, 1, C]`, ...), so it broadcasts per channel.
    static func perChannelConstant(_ v: Value?, _ channels: Int) -> Bool {
        guard let t = v?.constant, t.dtype.isSmoothableFloat, t.count == channels, let last = t.shape.last else { return false }
        return last == channels
    }
}
