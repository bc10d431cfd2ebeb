import SQIR

/// `calibrate`: runs the model over calibration samples and records activation statistics.
///
/// Matches: every linear layer's input (MatMul/Gemm whose weight is a constant) and both
/// operands of every attention MatMul (QKᵀ, PV).
/// Records, per value: per-channel (last axis) min/max, per-tensor min/max/absmax, the dims
/// seen, and with `percentile` < 100 a histogram of |x| for clipped static scales. Samples may
/// differ in sequence length; statistics are reduced as samples stream, so memory does not
/// grow with the number of samples.
/// Rewrites: nothing (the graph is unchanged); the statistics go into the `PassContext`
/// (`CalibrationStatisticsKey`) for `smooth` and `quantize`.
/// Samples: `CalibrationSamplesKey` in the context (the CLI's `--calib DIR`). Without samples,
/// statistics already in the context (`--load-calib`) are kept; with neither, an error.
///
/// Options: `percentile` (default 100: the maximum), `max-samples` (default 0: all), `rows`
/// (default 64: tokens per linear input kept in memory for `smooth{alpha=auto}`).
///
/// ```
/// // before and after: the same graph; the context gains, e.g.,
/// //   "/model/layers.0/input_layernorm/Mul_1_output_0": channelMax [...576], absMax 41.5
/// %y = MatMul(%ln, %w) @q_proj
/// ```
public struct Calibrate: Pass {
    public static let name = "calibrate"
    public static let summary = "Record activation ranges of linear and attention-MatMul inputs over calibration samples"
    public static let description = """
        Runs the interpreter over the calibration samples (--calib DIR) and records, for every \
        input of a MatMul/Gemm with a constant weight and both operands of attention MatMuls, \
        per-channel and per-tensor ranges. The graph is unchanged; smooth and quantize read \
        the statistics from the pass context.
        """

    static let percentileOption = PassOption("percentile", default: 100.0,
                                             help: "clip static (O3) scales at this percentile of abs(x) (100 = maximum)")
    static let maxSamplesOption = PassOption("max-samples", default: 0, help: "use at most this many samples (0 = all)")
    public static let rowsOption = PassOption("rows", default: 64,
                                       help: "tokens per linear input sampled for smooth{alpha=auto} (0 = none)")
    public static let peakRowsOption = PassOption("peak-rows", default: 0,
                                           help: "also keep the N tokens of largest max abs(x) per linear input for smooth{alpha=auto} (0 = none)")

    public static var options: [PassOptionDeclaration] {
        [percentileOption.declaration, maxSamplesOption.declaration, rowsOption.declaration, peakRowsOption.declaration]
    }
    public static var statistics: [PassStatisticDeclaration] {
        [PassStatisticDeclaration("samples", help: "calibration samples run"),
         PassStatisticDeclaration("values", help: "values with statistics")]
    }

    public let percentile: Double
    public let maxSamples: Int
    public let rows: Int
    public let peakRows: Int

    public init(options: PassOptions) throws {
        percentile = try Self.percentile(options, Self.percentileOption)
        maxSamples = try Self.nonNegative(options, Self.maxSamplesOption)
        rows = try Self.nonNegative(options, Self.rowsOption)
        peakRows = try Self.nonNegative(options, Self.peakRowsOption)
    }

    /// Calibrate is what provides the statistics smooth and quantize{policy=O3} require.
    public static func options(providing requirement: PassRequirement) -> PassOptions? {
        requirement == .calibrationStatistics ? PassOptions() : nil
    }

    public func run(on model: Model, context: PassContext) throws -> PassResult {
        guard let samples = context[CalibrationSamplesKey.self] else {
            if let loaded = context[CalibrationStatisticsKey.self] {
                context.remark("no calibration samples given; using the \(loaded.values.count) loaded statistics")
                return .unchanged
            }
            throw IRError(file: model.sourcePath, reason: "calibrate needs calibration samples (--calib DIR) or loaded statistics (--load-calib FILE)")
        }
        let makeRunner = context[CalibrationRunnerKey.self] ?? InterpreterRunner.make
        let runner = try makeRunner(model)
        let calibrator = Calibrator(percentile: percentile < 100 ? percentile : nil,
                                    maxSamples: maxSamples > 0 ? maxSamples : nil, rowsPerValue: rows,
                                    peakRowsPerValue: peakRows)
        let calibrated = try calibrator.calibrateKeepingRows(graph: model.graph, samples: samples, run: runner,
                                                             progress: context[CalibrationProgressKey.self])
        var statistics = calibrated.statistics
        if rows > 0 { context[CalibrationRowsKey.self] = calibrated.rows }
        if let existing = context[CalibrationStatisticsKey.self], existing.fingerprint == statistics.fingerprint {
            try statistics.merge(existing)
            context.remark("merged with \(existing.samples) sample(s) of statistics already loaded")
        }
        let observed = Calibrator.observedValues(in: model.graph)
        let missing = observed.filter { statistics[$0] == nil }
        for name in missing {
            context.remark("value '\(name)' was never computed by the interpreter; it has no statistics")
        }
        if !missing.isEmpty {
            // One line, not one per value: this says "part of the model is not covered".
            context.warning("\(missing.count) of \(observed.count) MatMul/Gemm input value(s) were never computed by the "
                + "interpreter and have no statistics (\(LinearCoverage.list(missing))): it skips nodes no graph output "
                + "depends on. Their layers cannot be smoothed or statically quantized; "
                + "'sqopt inspect \(model.sourcePath ?? "MODEL")' shows what the linears are")
        }
        context[CalibrationStatisticsKey.self] = statistics
        context[CalibrationResultKey.self] = statistics
        var result = PassResult(changed: false)
        result.statistics[counter: "samples"] = statistics.samples
        result.statistics[counter: "values"] = statistics.values.count
        return result
    }
}
