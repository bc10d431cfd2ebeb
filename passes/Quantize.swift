import SQIR

/// `quantize`: W8A8 in the standard QDQ form, at SmoothQuant's levels O1 / O2 / O3.
///
/// Matches: every linear layer (MatMul/Gemm whose weight is a constant float matrix), the LM
/// head included (a linear whose output reaches a graph output through bias / reshape steps
/// only; `lm-head=false` keeps it float), except nodes whose name matches `exclude`; with `bmm=true`
/// also the attention MatMuls (QKᵀ, PV). Norm parameters are never quantized.
/// Rewrites: symmetric int8, zero point 0, Δ = absmax / 127, round half to even, saturate.
/// - weights → int8 initializer + `DequantizeLinear` (per tensor, or per output channel with
///   `axis`, `weights=per-channel`);
/// - activations → `QuantizeLinear → DequantizeLinear`, one pair per value shared by all its
///   quantized consumers: O3 a constant scale from calibration; O2 a scale computed in the
///   graph, `Max(ReduceMax(Abs(x)) / 127, FLT_MIN)`; O1 one scale per token, `[…, T, 1]`,
///   through opset-21 blocked Q/DQ (`axis=-1`, `block_size=C`; for the Kᵀ-like operand of an
///   attention MatMul, per column with `axis=-2`). Attention operands whose contracted dim is
///   dynamic (PV) fall back to per-tensor dynamic under O1.
/// - `target=onnxruntime` (the default) writes the same codes as uint8 with zero point 128,
///   the form onnxruntime's u8×s8 CPU kernels run (`QuantTarget`, docs/deployment.md):
///   static scales on the Q/DQ pair; a dynamic scale Δ as `Q(Div(x, Δ), 1, 128)` with the
///   MatMul's product multiplied by Δ. `target=qdq` writes the portable int8 form above
///   (TensorRT and other QDQ readers).
/// Needs opset 21 (IR version 10): on an older model with something to quantize, the pass
/// manager runs `upgrade-opset{to=21}` first, as a step of its own (`requirements(for:)`).
/// Options: `policy` (O1|O2|O3|auto, default O1), `weights` (per-tensor|per-channel, default
/// per-channel), `bmm`, `exclude` (regex on node names), `lm-head`, `target`
/// (onnxruntime|qdq, default onnxruntime); static ranges: `calibration` (minmax|percentile|mse,
/// default minmax = the calibrated max |x|) with `percentile`, and `weight-calibration`
/// (max|mse) for per-tensor weights; `policy=auto` (`AutoPolicy`): `budget`, `metric`,
/// `holdout`, `output`.
///
/// ```
/// // before                               // after (O3, per-tensor, target=qdq)
/// %y = MatMul(%x, %w)                     %x_q = QuantizeLinear(%x, %x_scale, %zp)
///                                         %x_dq = DequantizeLinear(%x_q, %x_scale, %zp)
///                                         %w_dq = DequantizeLinear(%w_quantized, %w_scale, %zp)
///                                         %y = MatMul(%x_dq, %w_dq)
///
/// // after (O1, target=onnxruntime; Δ = Max(Div(ReduceMax(Abs(%x), axes=[-1]), 127), tiny))
/// %x_scaled = Div(%x, %x_scale)
/// %x_q = QuantizeLinear(%x_scaled, %sq_unit_scale, %sq_uint8_zero_point)      // uint8
/// %x_dq = DequantizeLinear(%x_q, %sq_unit_scale, %sq_uint8_zero_point)
/// %y_unscaled = MatMul(%x_dq, %w_dq)
/// %y = Mul(%y_unscaled, %x_scale)
/// ```
public struct Quantize: Pass {
    public static let name = "quantize"
    public static let summary = "W8A8: int8 weights and activations as QDQ (SmoothQuant O1/O2/O3)"
    public static let description = """
        Quantizes every linear layer (and with bmm=true the attention MatMuls) to symmetric \
        int8 in QDQ form: int8 weights with DequantizeLinear, activations through \
        QuantizeLinear/DequantizeLinear with static (O3), per-tensor dynamic (O2) or per-token \
        dynamic (O1) scales. target=onnxruntime (default) writes the activations as uint8 \
        with zero point 128 (the same codes), which onnxruntime runs on its u8×s8 kernels; \
        target=qdq writes portable int8 QDQ (TensorRT). Needs opset 21: on older models the \
        pipeline runs upgrade-opset first.
        """

    // The declared defaults below are the only place they are written: `QuantizeOptions`,
    // `smooth`'s policy/weights (what alpha=auto optimizes for) and the docs read them.
    public static let policyOption = PassOption("policy", default: QuantizeLevel.O1,
                                         help: "O1 per-token dynamic, O2 per-tensor dynamic, O3 per-tensor static activations; auto: per layer the fastest of O3, O1, float within budget")
    /// The declared default level as a fixed policy (what `QuantizeOptions()` and smooth's
    /// alpha=auto use); the declared default is a fixed level, never `auto`.
    public static var defaultPolicy: QuantPolicy { policyOption.defaultValue.fixed! }
    public static let weightsOption = PassOption("weights", default: WeightGranularity.perChannel, help: "weight scale granularity")
    public static let bmmOption = PassOption("bmm", default: false, help: "also quantize the attention MatMuls (QKᵀ, PV)")
    public static let excludeOption = PassOption("exclude", default: "", help: "regular expression: matching MatMul/Gemm node names stay float")
    public static let lmHeadOption = PassOption("lm-head", default: true, help: "quantize the LM head too (false: keep it float)")
    public static let targetOption = PassOption("target", default: QuantTarget.onnxruntime,
                                         help: "qdq: portable int8 Q/DQ (TensorRT, any QDQ reader); onnxruntime: uint8 activations (zero point 128) that onnxruntime's u8×s8 kernels run")
    public static let calibrationOption = PassOption("calibration", default: StaticCalibration.minmax,
                                              help: "static (O3) activation ranges: minmax = the calibrated max abs(x); percentile; mse = the range with the smallest Q/DQ error (histograms over the samples)")
    public static let percentileOption = PassOption("percentile", default: 99.99, help: "with calibration=percentile: the percentile of abs(x) (0, 100]")
    public static let weightCalibrationOption = PassOption("weight-calibration", default: WeightCalibration.max,
                                                    help: "per-tensor weight ranges: max = max abs(W); mse = the range with the smallest Q/DQ error")
    public static let budgetOption = PassOption("budget", default: AutoBudget.auto,
                                         help: "with policy=auto: largest KL / smallest cosine against the float model on the samples (auto: KL 0.01, cosine 0.999)")
    public static let metricOption = PassOption("metric", default: AutoMetric.auto,
                                         help: "with policy=auto: kl (softmax of the first output), cosine (rows of every output, worst counts); auto: kl if an output is named logits")
    public static let holdoutOption = PassOption("holdout", default: 0, help: "with policy=auto: measure the budget on the last N samples only")
    public static let outputOption = PassOption("output", default: "", help: "with policy=auto: the graph output the metric reads (default: see metric)")

    public static var options: [PassOptionDeclaration] {
        [policyOption.declaration, weightsOption.declaration, bmmOption.declaration,
         excludeOption.declaration, lmHeadOption.declaration, targetOption.declaration,
         calibrationOption.declaration, percentileOption.declaration, weightCalibrationOption.declaration,
         budgetOption.declaration, metricOption.declaration, holdoutOption.declaration, outputOption.declaration]
    }
    public static var statistics: [PassStatisticDeclaration] {
        [PassStatisticDeclaration("linears", help: "linear layers quantized"),
         PassStatisticDeclaration("bmms", help: "attention MatMuls quantized"),
         PassStatisticDeclaration("activation-qdq", help: "Q/DQ pairs inserted on activations"),
         PassStatisticDeclaration("float", help: "MatMul/Gemm left in float")]
    }

    public let options: QuantizeOptions
    /// `policy=auto` (then `options.policy` is O3, the form static layers get).
    public let auto: Bool
    public let calibration: StaticCalibration
    public let percentile: Double
    public let weightCalibration: WeightCalibration
    public let budget: AutoBudget
    public let metric: AutoMetric
    public let holdout: Int
    public let output: String
    /// The default-domain opset the written QDQ forms need (blocked Q/DQ, `output_dtype`).
    public static let opset = 21

    public init(options: PassOptions) throws {
        let exclude = options[Self.excludeOption]
        if !exclude.isEmpty {
            do { _ = try Regex(exclude) } catch {
                throw PipelineError.invalidOptionValue(pass: Self.name, option: Self.excludeOption.name,
                                                       value: exclude, expected: "a regular expression")
            }
        }
        let level = options[Self.policyOption]
        self.options = QuantizeOptions(policy: level.fixed ?? .O3, weights: options[Self.weightsOption],
                                       bmm: options[Self.bmmOption], exclude: exclude.isEmpty ? nil : exclude,
                                       lmHead: options[Self.lmHeadOption], target: options[Self.targetOption])
        auto = level == .auto
        calibration = options[Self.calibrationOption]
        percentile = try Self.percentile(options, Self.percentileOption)
        weightCalibration = options[Self.weightCalibrationOption]
        budget = options[Self.budgetOption]
        metric = options[Self.metricOption]
        holdout = try Self.nonNegative(options, Self.holdoutOption)
        output = options[Self.outputOption]
        if weightCalibration == .mse && self.options.weights == .perChannel {
            throw PipelineError.invalidOptionValue(pass: Self.name, option: Self.weightCalibrationOption.name, value: "mse",
                                                   expected: "max with weights=per-channel (mse clips per-tensor weights)")
        }
        if auto && self.options.bmm {
            throw PipelineError.invalidOptionValue(pass: Self.name, option: Self.bmmOption.name, value: "true",
                                                   expected: "false with policy=auto (it plans the linear layers only)")
        }
    }

    /// O3 and auto (whose `options.policy` is O3) read calibration statistics; the QDQ forms
    /// need opset 21, which the pipeline
    /// provides (`upgrade-opset`) only when there is something to quantize.
    public func requirements(for model: Model) -> [PassRequirement] {
        (options.policy == .O3 ? [.calibrationStatistics] : []) + (hasTargets(model.graph) ? [.minimumOpset(Self.opset)] : [])
    }

    /// True when the graph has a layer this pass would quantize or leave float on purpose.
    func hasTargets(_ graph: Graph) -> Bool {
        graph.nodes.contains { LinearLayer($0) != nil || (options.bmm && isActivationMatMul($0)) }
    }

    public func run(on model: Model, context: PassContext) throws -> PassResult {
        let statistics = context[CalibrationStatisticsKey.self]
        if options.policy == .O3 && statistics == nil {
            throw IRError(file: model.sourcePath, reason: "quantize{policy=\(auto ? "auto" : "O3")} needs calibration statistics: run calibrate first (--calib DIR) or load them (--load-calib FILE)")
        }
        let graph = model.graph
        if hasTargets(graph), let unmet = PassRequirement.minimumOpset(Self.opset).unmetReason(in: model) {
            throw IRError(file: model.sourcePath, reason: "quantize needs opset \(Self.opset) (\(unmet)): run upgrade-opset{to=\(Self.opset)} before it (a PassManager with a registry does)")
        }
        let quantizer = try prepareQuantizer(model: model, statistics: statistics, context: context)
        let report = try quantizer.run(on: graph, statistics: statistics)
        context[QuantizeReportKey.self] = report
        for (node, reason) in report.skipped.sorted(by: { $0.key < $1.key }) {
            context.remark("'\(node)' stays float: \(reason)")
        }
        let cacheOutputs = graph.outputs.filter { out in
            out.producer?.isOp("Concat") == true && out.producer?.inputs.contains { $0?.producer == nil && $0?.constant == nil } == true
        }
        if changed(report) && !cacheOutputs.isEmpty {
            context.remark("KV cache: \(cacheOutputs.count) present output(s) (Concat of a past input and new K/V) stay float; "
                           + "the cache is never quantized, only the linears computing K and V"
                           + (options.bmm ? " (and, with bmm=true, the attention MatMuls reading it, quantized on the fly)" : ""))
        }
        let changed = changed(report)
        var result = PassResult(changed: changed)
        result.statistics[counter: "linears"] = report.linears.count
        result.statistics[counter: "bmms"] = report.bmms.count
        result.statistics[counter: "activation-qdq"] = report.activationQDQ
        result.statistics[counter: "float"] = report.skipped.count
        result.statistics.nodesRewritten = report.linears.count + report.bmms.count
        return result
    }
}

private func changed(_ report: QuantizeReport) -> Bool { !report.linears.isEmpty || !report.bmms.isEmpty }

extension QuantPolicy: PassOptionChoice {}
extension WeightGranularity: PassOptionChoice {}
extension QuantTarget: PassOptionChoice {}
