import SQIR

/// Runs the calibration samples again over the graph as `quantize` sees it (after `smooth`),
/// for what the statistics of `calibrate` cannot answer: histograms of smoothed activations
/// (`quantize{calibration=percentile|mse}`; smoothing divides channels by different factors,
/// so a per-tensor histogram recorded before it cannot be rescaled) and the measurements of
/// `quantize{policy=auto}`. One sample at a time: memory does not grow with their number.
///
/// It uses the samples and the executor `calibrate` used (`CalibrationSamplesKey`,
/// `CalibrationRunnerKey`, else sqopt's interpreter), and the first `count` samples, the ones
/// the statistics were computed on (`calibrate{max-samples}`).
struct SampleReplay {
    let samples: any CalibrationSampleSource
    let count: Int
    let makeRunner: (Model) throws -> Calibrator.Runner

    /// nil when the context has no samples (`--load-calib` without `--calib`).
    init?(context: PassContext, statistics: CalibrationStatistics?) {
        guard let samples = context[CalibrationSamplesKey.self], samples.count > 0 else { return nil }
        self.samples = samples
        let used = statistics?.samples ?? samples.count
        self.count = Swift.min(samples.count, used > 0 ? used : samples.count)
        self.makeRunner = context[CalibrationRunnerKey.self] ?? InterpreterRunner.make
    }

    /// Runs `model` on samples `indices`, handing each value in `observe` to `observer` with
    /// the sample's index, then calls `afterSample`. The executor returns no outputs: graph
    /// outputs the caller needs must be named in `observe`.
    func forEachSample(of model: Model, indices: Range<Int>, observe: Set<String>,
                       _ observer: (_ sample: Int, _ name: String, _ tensor: Tensor) throws -> Void,
                       afterSample: ((Int) throws -> Void)? = nil) throws {
        let run = try makeRunner(model)
        let inputs = model.graph.inputs.filter { v in v.constant == nil && !model.graph.initializers.contains { $0 === v } }
        try Calibrator.forEachSample(samples, indices: indices, graphInputs: inputs, run: run, observe: observe,
                                     observer, afterSample: afterSample)
    }

    /// `MagnitudeHistogram`s of `values` over the samples.
    func histograms(of model: Model, values: Set<String>) throws -> [String: MagnitudeHistogram] {
        var histograms: [String: MagnitudeHistogram] = [:]
        try forEachSample(of: model, indices: 0..<count, observe: values) { _, name, tensor in
            switch tensor.dtype {
            case .float:
                tensor.withElements(as: Float.self) { histograms[name, default: MagnitudeHistogram()].add($0) }
            case .float16, .bfloat16, .double:
                let floats = tensor.doubleValues().map(Float.init)
                floats.withUnsafeBufferPointer { histograms[name, default: MagnitudeHistogram()].add($0) }
            default:
                return
            }
        }
        return histograms
    }
}

/// The static ranges `quantize{calibration=percentile|mse}` gives the activations in
/// `values`: each the method's choice on a histogram collected over the samples, never above
/// the calibrated max |x|. Throws when the context has no samples.
func staticRanges(method: StaticCalibration, percentile: Double, values: [String], model: Model,
                  statistics: CalibrationStatistics?, context: PassContext) throws -> [String: Float] {
    guard method != .minmax, !values.isEmpty else { return [:] }
    guard let replay = SampleReplay(context: context, statistics: statistics) else {
        throw IRError(file: model.sourcePath, reason: "quantize{calibration=\(method.rawValue)} needs the calibration samples (--calib DIR) to build histograms of the activations; saved statistics (--load-calib) hold ranges only")
    }
    let histograms = try replay.histograms(of: model, values: Set(values))
    var ranges: [String: Float] = [:]
    for name in values {
        guard let histogram = histograms[name], let range = histogram.range(method, percentile: percentile) else { continue }
        let calibrated = statistics?[name]?.absMax ?? histogram.maxMagnitude
        ranges[name] = Swift.min(range, calibrated > 0 ? calibrated : range)
        context.remark("calibration=\(method.rawValue): '\(name)' static range \(ranges[name] ?? 0) (max |x| \(calibrated))")
    }
    return ranges
}
