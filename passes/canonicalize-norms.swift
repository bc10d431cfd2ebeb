import SQIR

/// `canonicalize-norms`: recognizes LayerNorm and RMSNorm written out as elementary ops and
/// replaces each by one norm op, so later passes (smooth) find γ and β as its inputs.
///
/// Matches (passes/support/NormPatterns.swift), with an optional Cast before the γ multiply
/// and whatever feeds the norm (a Cast to float included) as its input:
/// - LayerNorm: ReduceMean(x), Sub, Pow(·, 2) or Mul(d, d), ReduceMean, Add(eps), Sqrt,
///   Div (or Mul by Reciprocal), Mul(γ), optional Add(β);
/// - RMSNorm: Pow(x, 2) or Mul(x, x), ReduceMean, Add(eps), Sqrt, then Reciprocal, Div(1, ·)
///   or Div(x, ·), or Pow(·, -0.5), Mul(x, ·), Mul(γ).
/// The means must reduce the last axis only (keepdims=1), eps and γ (β) must be constants
/// with γ (β) of one element per channel, and no intermediate may be used outside the match.
///
/// Rewrites to `LayerNormalization(x, γ, β) {axis = -1, epsilon}` (needs opset >= 17; below,
/// the norm is left as it is, with a remark) and RMSNorm to, per `rms-op`:
/// `auto` (default): `RMSNormalization` when the model's opset is >= 23, else
/// `SimplifiedLayerNormalization` (default domain, as onnxruntime registers it, which it
/// runs at any opset); `simplified` or `rms-normalization` force one (the latter needs
/// opset >= 23). `stash_type = 1` (float) either way. A Cast after the normalization becomes
/// a Cast of the norm's output, with γ (β) converted to the input's type.
///
/// Options: `rms-op` (auto|simplified|rms-normalization, auto).
///
/// ```
/// // before (HF LlamaRMSNorm as torch.onnx writes it)
/// graph g(%x: f32[batch,seq,64]) -> (%y: f32[batch,seq,64]) {
///   %two = const f32[] [2.0]
///   %eps = const f32[] [1e-05]
///   %one = const f32[] [1.0]
///   %w = const f32[64] <64 elements>
///   %p = Pow(%x, %two)
///   %m = ReduceMean(%p) {axes = [-1], keepdims = 1}
///   %a = Add(%m, %eps)
///   %s = Sqrt(%a)
///   %r = Div(%one, %s)
///   %n = Mul(%x, %r)
///   %y = Mul(%w, %n) @/norm/Mul_1
///   return %y
/// }
/// // after canonicalize-norms,dce
/// graph g(%x: f32[batch,seq,64]) -> (%y: f32[batch,seq,64]) {
///   %w = const f32[64] <64 elements>
///   %y: f32[batch,seq,64] = SimplifiedLayerNormalization(%x, %w) {axis = -1, epsilon = 1e-05, stash_type = 1} @/norm/SimplifiedLayerNormalization
///   return %y
/// }
/// ```
public struct CanonicalizeNorms: Pass {
    public enum RMSOp: String, CaseIterable, PassOptionChoice {
        case auto, simplified
        case rmsNormalization = "rms-normalization"
    }

    public static let name = "canonicalize-norms"
    public static let summary = "Rewrite decomposed LayerNorm/RMSNorm subgraphs into single norm ops"
    public static let description = """
        Finds LayerNorm (ReduceMean, Sub, Pow, ReduceMean, Add eps, Sqrt, Div, Mul γ, Add β) and \
        RMSNorm (Pow, ReduceMean, Add eps, Sqrt, Reciprocal or Div, Mul x, Mul γ) as exporters \
        write them, with optional Casts, reducing the last axis, and rewrites each into \
        LayerNormalization (opset >= 17) or, for RMSNorm, RMSNormalization (opset >= 23) or \
        SimplifiedLayerNormalization (default domain, as onnxruntime registers it) per rms-op.
        """
    public static let rmsOp = PassOption("rms-op", default: RMSOp.auto,
                                         help: "what RMSNorm becomes: auto = RMSNormalization at opset >= 23, else SimplifiedLayerNormalization")
    public static let options = [rmsOp.declaration]
    public static let statistics = [
        PassStatisticDeclaration("layer-norms", help: "decomposed LayerNorms rewritten to LayerNormalization"),
        PassStatisticDeclaration("rms-norms", help: "decomposed RMSNorms rewritten"),
        PassStatisticDeclaration("skipped-opset", help: "LayerNorms left decomposed because the opset is below 17"),
        PassStatisticDeclaration("existing-norms", help: "norm ops already present before the pass"),
    ]
    static let normOps: Set<String> = ["LayerNormalization", "SimplifiedLayerNormalization", "RMSNormalization"]

    public let rmsOpChoice: RMSOp

    public init(options: PassOptions) {
        rmsOpChoice = options[Self.rmsOp]
    }

    public func run(on model: Model, context: PassContext) throws -> PassResult {
        let opset = model.opsetVersion("") ?? 1
        if rmsOpChoice == .rmsNormalization && opset < 23 {
            throw IRError(reason: "canonicalize-norms{rms-op=rms-normalization} needs opset 23 or later (the model imports opset \(opset)); run upgrade-opset{to=23} first")
        }
        let rmsOpType = rmsOpChoice == .simplified || (rmsOpChoice == .auto && opset < 23)
            ? "SimplifiedLayerNormalization" : "RMSNormalization"
        var statistics = PassStatistics()
        statistics[counter: "existing-norms"] = Self.countNorms(in: model.graph)
        let summary = try RewriteDriver().apply(rules(rmsOpType: rmsOpType, opset: opset), to: model, context: context)
        statistics[counter: "layer-norms"] = summary.count(of: "LayerNorm with β") + summary.count(of: "LayerNorm without β")
        statistics[counter: "rms-norms"] = summary.count(of: "RMSNorm")
        statistics[counter: "skipped-opset"] = context.diagnostics(of: Self.name)
            .filter { $0.message.hasPrefix(Self.opsetRemark) }.count
        return PassResult(changed: summary.total > 0, statistics: statistics)
    }

    static func countNorms(in graph: Graph) -> Int {
        graph.nodes.reduce(0) { n, node in
            n + (normOps.contains(node.opType) && node.domain.isEmpty ? 1 : 0)
                + node.subgraphs.reduce(0) { $0 + countNorms(in: $1) }
        }
    }

    static let opsetRemark = "LayerNorm left decomposed: LayerNormalization needs opset 17"

    func rules(rmsOpType: String, opset: Int) -> RuleSet {
        RuleSet([
            // (hs - mean) / sqrt(var + eps) * γ + β -> LayerNormalization(hs, γ, β)
            RewriteRule("LayerNorm with β", NormPatterns.layerNormWithBeta) { m, b in
                try Self.rewriteLayerNorm(m, b, opset: opset)
            },
            // (hs - mean) / sqrt(var + eps) * γ -> LayerNormalization(hs, γ), unless a β Add follows
            RewriteRule("LayerNorm without β", NormPatterns.layerNormScaled) { m, b in
                guard let out = m.root.output(0), !NormPatterns.feedsBetaAdd(out) else { return nil }
                return try Self.rewriteLayerNorm(m, b, opset: opset)
            },
            // hs / sqrt(mean(hs²) + eps) * γ -> SimplifiedLayerNormalization / RMSNormalization(hs, γ)
            RewriteRule("RMSNorm", NormPatterns.rmsNormScaled) { m, b in
                guard let hs = m["hs"], !NormPatterns.isCentred(hs) else { return nil }
                return try Self.rewriteNorm(m, b, opType: rmsOpType, withBeta: false)
            },
        ])
    }

    static func rewriteLayerNorm(_ m: Match, _ b: RewriteBuilder, opset: Int) throws -> [Value?]? {
        guard opset >= 17 else {
            if m.isSelfContained { b.remark("\(opsetRemark) (the model has \(opset)); run upgrade-opset first") }
            return nil
        }
        return try rewriteNorm(m, b, opType: "LayerNormalization", withBeta: m["beta"] != nil)
    }

    /// Builds `opType(hs, γ[, β])`, followed by the output Cast when the match had one.
    static func rewriteNorm(_ m: Match, _ b: RewriteBuilder, opType: String, withBeta: Bool) throws -> [Value?]? {
        guard m.isSelfContained, let hs = m["hs"], let epsilon = m.constant("eps")?.scalarDouble,
              let gammaValue = m["gamma"], let gammaTensor = gammaValue.knownConstant else { return nil }
        // eps is added to mean(hs²), so it has the element type the norm computes in.
        let dtype = hs.type?.dtype ?? m.constant("eps")?.dtype ?? gammaTensor.dtype
        let channels = hs.type?.dims?.last?.value
        guard let gamma = perChannel(gammaValue, gammaTensor, dtype: dtype, channels: channels, b) else {
            b.remark("\(opType) pattern found but γ is not one value per channel")
            return nil
        }
        var inputs = [hs, gamma]
        if withBeta {
            guard let betaValue = m["beta"], let betaTensor = betaValue.knownConstant,
                  let beta = perChannel(betaValue, betaTensor, dtype: dtype, channels: channels ?? gammaTensor.count, b) else {
                b.remark("LayerNorm pattern found but β is not one value per channel")
                return nil
            }
            inputs.append(beta)
        }
        let attributes = [Attribute("axis", .int(-1)), Attribute("epsilon", .float(Float(epsilon))), Attribute("stash_type", .int(1))]
        var out = b.op(opType, inputs, attributes: attributes, name: scopedName(m.root, opType), type: hs.type)
        if let cast = m.node("out_cast"), let to = cast.int("to") {
            out = b.op("Cast", [out], attributes: [Attribute("to", .int(to))], name: scopedName(m.root, "Cast"))
        }
        return [out]
    }

    /// γ or β as a rank-1 constant of `dtype` with one element per channel: the matched
    /// value itself when it already is one, else a reshaped / converted copy.
    static func perChannel(_ value: Value, _ tensor: Tensor, dtype: DType, channels: Int?, _ b: RewriteBuilder) -> Value? {
        guard tensor.shape.dropLast().allSatisfy({ $0 == 1 }), let count = tensor.shape.last,
              channels == nil || channels == count else { return nil }
        if tensor.rank == 1 && tensor.dtype == dtype { return value }
        guard let converted = convert(tensor, to: dtype, shape: [count]) else { return nil }
        return b.constant(converted, name: value.name + "_per_channel")
    }

    static func convert(_ tensor: Tensor, to dtype: DType, shape: [Int]) -> Tensor? {
        if tensor.dtype == dtype { return try? tensor.reshaped(shape) }
        let values = tensor.doubleValues()
        switch dtype {
        case .float: return Tensor(shape: shape, values: values.map { Float($0) })
        case .double: return Tensor(shape: shape, values: values)
        case .float16:
            let bits = values.map { floatToHalf(Float($0)) }
            return bits.withUnsafeBytes { try? Tensor(dtype: .float16, shape: shape, storage: TensorStorage(copying: $0)) }
        default: return nil
        }
    }

    /// `/model/layers.0/input_layernorm/Mul_1` -> `/model/layers.0/input_layernorm/<opType>`.
    static func scopedName(_ root: Node, _ opType: String) -> String {
        guard let slash = root.name.lastIndex(of: "/") else { return root.name.isEmpty ? opType : "\(root.name)/\(opType)" }
        return String(root.name[...slash]) + opType
    }
}
