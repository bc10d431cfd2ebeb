import SQIR

/// `smooth`: SmoothQuant's offline smoothing (Xiao et al. 2022), exact in fp32.
///
/// Matches: groups = an activation X and every linear layer (MatMul/Gemm with a constant
/// weight) reading it — q/k/v together, gate/up together, fc1, fused QKV. With `scope=norms`
/// only groups whose X comes out of a normalization (LayerNormalization, RMSNormalization,
/// SimplifiedLayerNormalization, or a decomposed norm's per-channel `Mul(γ)` /
/// `Add(Mul(·, γ), β)` tail); `scope=foldable` (default) also the groups whose producer absorbs
/// 1/s without a run-time op (SwiGLU's down_proj, folded into up_proj's output channels);
/// `scope=all` takes every linear input. The LM head's input is smoothed too (`quantize`
/// quantizes the LM head by default); `lm-head=false` skips groups made only of it.
/// Rewrites: per channel j, `s_j = max|X_j|^α / max(max|W_j|, 1e-5)^(1−α)` (≥ 1e-5; 1 for
/// dead channels), with max|W_j| over every weight of the group. Weight input channel j ← ×s_j
/// (new initializers). `1/s` folds into the producer's γ (and β) when every consumer of X is
/// one of the group's linears; otherwise one `Mul(X, 1/s)` is inserted for the group (post-LN
/// BERT: the norm output also feeds the residual Add). The statistics of the smoothed value
/// are divided by s in the context, so `quantize` needs no recalibration.
/// Options: `alpha` (0…1, default 0.5; `auto` searches `alpha-min`…`alpha-max`, default
/// 0.30…0.90, step 0.05, per group for the smallest fake-quantized output error on the rows
/// calibrate sampled), `scope` (norms|foldable|all), `lm-head` (bool), `policy` / `weights` (the
/// quantization `alpha=auto` optimizes for).
///
/// ```
/// // before                                         // after (fold)
/// %n = LayerNormalization(%x, %g, %b)               %n = LayerNormalization(%x, %g_smoothed, %b_smoothed)
/// %q = MatMul(%n, %wq)                              %q = MatMul(%n, %wq_smoothed)
/// %k = MatMul(%n, %wk)                              %k = MatMul(%n, %wk_smoothed)
/// // post-LN (the norm output also feeds Add): no fold, one shared Mul
/// %n = LayerNormalization(%x, %g, %b)               %n_smooth = Mul(%n, %n_smooth_scale)
/// %q = MatMul(%n, %wq)                              %q = MatMul(%n_smooth, %wq_smoothed)
/// %r = Add(%n, %attn)                               %r = Add(%n, %attn)
/// ```
public struct Smooth: Pass {
    public static let name = "smooth"
    public static let summary = "SmoothQuant: migrate activation outliers into the weights (exact in fp32)"
    public static let description = """
        Computes one smoothing factor per input channel for every group of linears reading \
        one activation, scales the weights' input channels by it and divides the activation \
        by it: folded into the producing norm when every consumer is smoothed, else through \
        an inserted Mul. Needs calibration statistics (calibrate or --load-calib).
        """

    /// SmoothQuant's α 0.5: the `alpha` option's default, and what `alpha=auto` uses for a
    /// group it cannot search.
    public static let defaultAlpha = 0.5
    // `Smoother`'s defaults are these declarations.
    public static let alphaOption = PassOption("alpha", default: SmoothAlpha.value(defaultAlpha),
                                        help: "migration strength α in [0, 1], or auto (search per group)")
    public static let scopeOption = PassOption("scope", default: SmoothScope.foldable,
                                        help: "norms: linears after a normalization; foldable: also linears whose producer absorbs 1/s (down_proj via up_proj), no Mul; all: every linear")
    public static let lmHeadOption = PassOption("lm-head", default: true, help: "smooth the LM head's input too (false: leave groups made only of it)")
    // alpha=auto optimizes for quantize's defaults unless told otherwise (declared there once).
    static let policyOption = PassOption("policy", default: Quantize.defaultPolicy,
                                         help: "with alpha=auto: the activation quantization to optimize for")
    static let weightsOption = PassOption("weights", default: Quantize.weightsOption.defaultValue,
                                          help: "with alpha=auto: the weight quantization to optimize for")
    // alpha=auto's grid: alpha-min, alpha-min + 0.05, …, alpha-max.
    static let alphaMinOption = PassOption("alpha-min", default: AlphaSearch.defaultRange.lowerBound,
                                           help: "with alpha=auto: the smallest α searched, in [0, 1]")
    static let alphaMaxOption = PassOption("alpha-max", default: AlphaSearch.defaultRange.upperBound,
                                           help: "with alpha=auto: the largest α searched, in [alpha-min, 1]")
    static let alphaErrorOption = PassOption("alpha-error", default: AlphaError.absolute,
                                             help: "with alpha=auto: absolute = Σ‖error‖² over the sampled rows; relative = each row's ‖error‖² / ‖X·W‖²")

    public static var options: [PassOptionDeclaration] {
        [alphaOption.declaration, scopeOption.declaration, lmHeadOption.declaration,
         policyOption.declaration, weightsOption.declaration, alphaMinOption.declaration, alphaMaxOption.declaration,
         alphaErrorOption.declaration]
    }
    public static var statistics: [PassStatisticDeclaration] {
        [PassStatisticDeclaration("groups", help: "groups smoothed"),
         PassStatisticDeclaration("folded", help: "groups whose 1/s folded into the producer"),
         PassStatisticDeclaration("muls", help: "groups given a Mul(X, 1/s)"),
         PassStatisticDeclaration("skipped", help: "groups without per-channel statistics")]
    }

    public let alpha: SmoothAlpha
    public let scope: SmoothScope
    public let lmHead: Bool
    public let policy: QuantPolicy
    public let weights: WeightGranularity
    /// alpha=auto's search range (step 0.05).
    public let alphaRange: ClosedRange<Double>
    public let alphaError: AlphaError

    public init(options: PassOptions) throws {
        alpha = options[Self.alphaOption]
        scope = options[Self.scopeOption]
        lmHead = options[Self.lmHeadOption]
        policy = options[Self.policyOption]
        weights = options[Self.weightsOption]
        let low = options[Self.alphaMinOption], high = options[Self.alphaMaxOption]
        guard low >= 0, low <= 1 else {
            throw PipelineError.invalidOptionValue(pass: Self.name, option: Self.alphaMinOption.name,
                                                   value: low.description, expected: "a number in [0, 1]")
        }
        guard high >= low, high <= 1 else {
            throw PipelineError.invalidOptionValue(pass: Self.name, option: Self.alphaMaxOption.name,
                                                   value: high.description, expected: "a number in [alpha-min (\(low)), 1]")
        }
        alphaRange = low...high
        alphaError = options[Self.alphaErrorOption]
    }

    /// Reads calibration statistics (the CLI inserts calibrate when nothing provides them).
    public func requirements(for model: Model) -> [PassRequirement] { [.calibrationStatistics] }

    public func run(on model: Model, context: PassContext) throws -> PassResult {
        guard var statistics = context[CalibrationStatisticsKey.self] else {
            throw IRError(file: model.sourcePath, reason: "smooth needs calibration statistics: run calibrate first (--calib DIR) or load them (--load-calib FILE)")
        }
        // With alpha=auto, `alphaForGroup` chooses per group and falls back to the declared
        // default α where it cannot (no sampled rows).
        var smoother = Smoother(alpha: Self.defaultAlpha, scope: scope, includeHeads: lmHead)
        switch alpha {
        case .value(let a): smoother.alpha = a
        case .auto:
            let search = AlphaSearch(rows: context[CalibrationRowsKey.self], policy: policy,
                                     perChannelWeights: weights == .perChannel,
                                     grid: AlphaSearch.grid(alphaRange), relativeError: alphaError == .relative)
            smoother.alphaForGroup = { group, stats in try search.bestAlpha(for: group, stats: stats, context: context) }
        }
        let (reports, skipped) = try smoother.run(on: model.graph, statistics: &statistics)
        if !reports.isEmpty {
            // The statistics now describe the smoothed graph: a file saved from them must not
            // load onto the original model (its ranges are divided by s).
            statistics.fingerprint = ModelFingerprint.of(model.graph)
        }
        context[CalibrationStatisticsKey.self] = statistics
        context[SmoothReportKey.self] = (context[SmoothReportKey.self] ?? []) + reports
        for report in reports {
            let what = report.foldedInto.map { "folded into '\($0)'" }
                ?? "Mul '\(report.mulNode ?? "?")' inserted (\(report.foldRefusal ?? "no foldable producer"))"
            context.remark("'\(report.activation)' → \(report.layers.count) linear(s), α \(report.alpha), s in [\(report.factorMin), \(report.factorMax)]: \(what)")
            if let clamped = report.clampedElements {
                context.warning("group of '\(report.activation)': \(clamped) smoothed weight/norm element(s) beyond the model's float16/bfloat16 range were clamped to ±max")
            }
        }
        for (name, reason) in skipped { context.remark("group of '\(name)' not smoothed: \(reason)") }
        if !skipped.isEmpty {
            // One line for the part of the model smoothing did not cover, not one per group.
            context.warning("\(skipped.count) of \(skipped.count + reports.count) group(s) not smoothed: no per-channel "
                + "calibration statistics for their input (\(LinearCoverage.list(skipped.map(\.0)))); their linears stay "
                + "unsmoothed. Calibrate on samples that reach them, or check --load-calib's file (remarks list each group)")
        }
        var result = PassResult(changed: !reports.isEmpty)
        result.statistics[counter: "groups"] = reports.count
        result.statistics[counter: "folded"] = reports.filter(\.folded).count
        result.statistics[counter: "muls"] = reports.filter { !$0.folded }.count
        result.statistics[counter: "skipped"] = skipped.count
        result.statistics.nodesRewritten = reports.reduce(0) { $0 + $1.layers.count + ($1.folded ? 1 : 0) }
        return result
    }
}

/// `alpha=0.5` or `alpha=auto`.
public enum SmoothAlpha: PassOptionValue, Equatable {
    case value(Double)
    case auto

    public static var optionTypeName: String { "float|auto" }
    public init?(optionText: String) {
        if optionText == "auto" { self = .auto; return }
        guard let v = Double(optionText), v >= 0, v <= 1 else { return nil }
        self = .value(v)
    }
    public var optionText: String {
        switch self {
        case .value(let v): return v.description
        case .auto: return "auto"
        }
    }
}

extension SmoothScope: PassOptionChoice {}

/// `smooth{alpha-error}`: how `alpha=auto` sums the output error of the sampled rows.
public enum AlphaError: String, Sendable, CaseIterable, PassOptionChoice {
    /// Σ‖Q(X/s)·Q(W·s) − X·W‖² over rows and layers (large tokens weigh most).
    case absolute
    /// Σ of each row's ‖error‖² / ‖X·W‖² (every token alike).
    case relative
}
