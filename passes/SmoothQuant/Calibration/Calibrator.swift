import SQIR

/// Progress of a calibration run, reported after every sample.
public struct CalibrationProgress: Sendable, Equatable {
    public var completed: Int
    public var total: Int
    public var elapsedSeconds: Double

    public var samplesPerSecond: Double { elapsedSeconds > 0 ? Double(completed) / elapsedSeconds : 0 }
    /// Estimated seconds left (nil before the first sample).
    public var remainingSeconds: Double? {
        completed > 0 ? elapsedSeconds / Double(completed) * Double(total - completed) : nil
    }
}

/// Runs a model over calibration samples and reduces, as each value streams by, the
/// statistics of every activation that quantization and smoothing need:
/// - the input of every linear layer (MatMul/Gemm with a constant weight);
/// - both operands of every attention batched MatMul (QKᵀ, PV).
/// Nothing else is observed, and no activation outlives its observation.
public struct Calibrator {
    /// Runs the model on one sample, handing each value named in `observe` to `observer`.
    public typealias Runner = (_ inputs: CalibrationSample, _ observe: Set<String>,
                               _ observer: (String, Tensor) throws -> Void) throws -> Void

    /// Keep a histogram of |x| and clip static scales at this percentile (e.g. 99.99); nil:
    /// the maximum (`calibrate`'s `percentile=100`).
    public var percentile: Double?
    /// Use at most this many samples (nil: all, `calibrate`'s `max-samples=0`).
    public var maxSamples: Int?
    /// Rows (tokens) of each linear input to keep as a uniform sample for `alpha=auto`
    /// (`RowReservoir`); 0 keeps none.
    public var rowsPerValue: Int

    /// Rows of largest max |x| kept beside the uniform sample (`RowReservoir.peakCapacity`).
    public var peakRowsPerValue: Int

    /// No defaults: `calibrate` passes its declared options, other callers say what they want
    /// (`peakRowsPerValue` 0 keeps none, as before it existed).
    public init(percentile: Double?, maxSamples: Int?, rowsPerValue: Int, peakRowsPerValue: Int = 0) {
        self.peakRowsPerValue = peakRowsPerValue
        self.percentile = percentile
        self.maxSamples = maxSamples
        self.rowsPerValue = rowsPerValue
    }

    /// Statistics plus the sampled rows (empty unless `rowsPerValue` > 0).
    public struct Result {
        public var statistics: CalibrationStatistics
        public var rows: [String: RowReservoir]
    }

    /// Names of the values calibration observes in `graph`, in node order.
    public static func observedValues(in graph: Graph) -> [String] {
        var names: [String] = []
        var seen = Set<String>()
        func add(_ v: Value?) {
            guard let v, v.constant == nil, seen.insert(v.name).inserted else { return }
            names.append(v.name)
        }
        for node in graph.nodes {
            if let layer = LinearLayer(node) {
                add(layer.activation)
            } else if isActivationMatMul(node) {
                add(node.input(0))
                add(node.input(1))
            }
        }
        return names
    }

    /// Calibrates: validates and runs every sample, returns the statistics (keyed by value
    /// name, fingerprinted with `graph`). `graphInputs` defaults to the graph's non-initializer inputs.
    public func calibrate(graph: Graph, samples: CalibrationSampleSource, run: Runner,
                          progress: ((CalibrationProgress) -> Void)? = nil) throws -> CalibrationStatistics {
        try calibrateKeepingRows(graph: graph, samples: samples, run: run, progress: progress).statistics
    }

    /// `calibrate`, also returning the sampled rows of every linear input.
    public func calibrateKeepingRows(graph: Graph, samples: CalibrationSampleSource, run: Runner,
                                     progress: ((CalibrationProgress) -> Void)? = nil) throws -> Result {
        let total = min(samples.count, maxSamples ?? samples.count)
        guard total > 0 else { throw IRError(reason: "calibration needs at least one sample") }
        let names = Self.observedValues(in: graph)
        let wanted = Set(names)
        let initializers = Set(graph.initializers.map(ObjectIdentifier.init))
        let runtimeInputs = graph.inputs.filter { !initializers.contains(ObjectIdentifier($0)) && $0.constant == nil }
        var statistics = CalibrationStatistics(fingerprint: ModelFingerprint.of(graph), percentile: percentile)
        var values: [String: ActivationStatistics] = [:]
        var rows: [String: RowReservoir] = [:]
        if rowsPerValue > 0 {
            for layer in LinearLayer.all(in: graph) where rows[layer.activation.name] == nil {
                var hash = FNV1a64()
                hash.add(layer.activation.name)
                rows[layer.activation.name] = RowReservoir(channels: layer.inputChannels, capacity: rowsPerValue, seed: hash.value,
                                                             peakCapacity: peakRowsPerValue)
            }
        }
        let histogram = percentile != nil
        let clock = ContinuousClock()
        let start = clock.now
        try Self.forEachSample(samples, indices: 0..<total, graphInputs: runtimeInputs, run: run, observe: wanted) { _, name, tensor in
            try Self.observe(tensor, into: &values[name, default: ActivationStatistics()], histogram: histogram)
            if rows[name] != nil, tensor.dtype == .float {
                tensor.withElements(as: Float.self) { rows[name]?.offer($0) }
            }
        } afterSample: { index in
            let elapsed = clock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            progress?(CalibrationProgress(completed: index + 1, total: total, elapsedSeconds: seconds))
        }
        statistics.values = values
        statistics.samples = total
        return Result(statistics: statistics, rows: rows)
    }

    /// Validates and runs samples `indices` one at a time, handing each value of `observe` to
    /// `observer` with the sample's index, then calls `afterSample`; errors name the sample's
    /// file. `calibrate` and `quantize`'s replays (`SampleReplay`) both run samples through here.
    static func forEachSample(_ samples: any CalibrationSampleSource, indices: Range<Int>, graphInputs: [Value],
                              run: Runner, observe: Set<String>,
                              _ observer: (_ sample: Int, _ name: String, _ tensor: Tensor) throws -> Void,
                              afterSample: ((Int) throws -> Void)? = nil) throws {
        for index in indices {
            let location = samples.location(of: index)
            let sample = try samples.sample(at: index)
            try validateSample(sample, graphInputs: graphInputs, location: location)
            do {
                // `run` and `observer` are both non-escaping; the observer only lives for the call.
                try withoutActuallyEscaping(observer) { observer in
                    try run(sample, observe) { name, tensor in
                        guard observe.contains(name) else { return }
                        try observer(index, name, tensor)
                    }
                }
            } catch let error as IRError {
                throw error.inFile(location)
            } catch {
                throw IRError(file: location, reason: "running the model failed: \(error)")
            }
            try afterSample?(index)
        }
    }

    /// Folds a float tensor into `stats` (float16 / bfloat16 / double are widened or narrowed
    /// to float32 first; other dtypes are not statistics material and are ignored).
    static func observe(_ tensor: Tensor, into stats: inout ActivationStatistics, histogram: Bool) throws {
        switch tensor.dtype {
        case .float:
            tensor.withElements(as: Float.self) { stats.observe($0, shape: tensor.shape, histogram: histogram) }
        case .float16, .bfloat16, .double:
            let floats = tensor.doubleValues().map(Float.init)
            floats.withUnsafeBufferPointer { stats.observe($0, shape: tensor.shape, histogram: histogram) }
        default:
            return
        }
    }
}
