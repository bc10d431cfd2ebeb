import SQIR
import SQRuntime

/// `smooth{alpha=auto}`: per group, the α on a grid (default 0.30…0.90 step 0.05;
/// `smooth{alpha-min,alpha-max}`) whose smoothed,
/// fake-quantized outputs are closest to the float outputs on sampled calibration rows:
///
///     error(α) = Σ_layers ‖Q(X/s) · Q(W·s) − X · W‖² / Σ_layers ‖X · W‖²
///
/// with Q the quantizer `quantize` will use (`policy`, `weights`). X is the uniform sample of
/// rows calibration kept (`CalibrationRowsKey`), plus with `calibrate{peak-rows=N}` the N rows
/// of largest max |x| (each sum then a stratified estimate over every row:
/// `RowReservoir.weightedRows`); no activation is recomputed. `alpha-error=relative` divides
/// each row's error by that row's ‖X · W‖² (every token counts alike, massive ones too).
/// `policy` and `perChannelWeights` have no defaults: `smooth` passes its own options.
struct AlphaSearch {
    let rows: [String: RowReservoir]?
    var policy: QuantPolicy
    var perChannelWeights: Bool
    var grid: [Double] = AlphaSearch.grid(AlphaSearch.defaultRange)
    /// Weigh each row's error by its reference's squared norm (`smooth{alpha-error=relative}`).
    var relativeError = false

    /// `smooth`'s `alpha-min` / `alpha-max` defaults.
    static let defaultRange = 0.30...0.90

    /// `range.lowerBound`, + 0.05, … up to `range.upperBound` (included when it is on the step;
    /// a range narrower than a step is its lower bound alone, plus the upper bound if distinct).
    static func grid(_ range: ClosedRange<Double>, step: Double = 0.05) -> [Double] {
        let count = Int(((range.upperBound - range.lowerBound) / step + 1e-9).rounded(.down))
        var values = (0...count).map { range.lowerBound + step * Double($0) }
        if let last = values.last, range.upperBound - last > 1e-9 { values.append(range.upperBound) }
        return values
    }

    /// The best α for `group`, or nil (with a warning) when no rows were sampled for it.
    func bestAlpha(for group: SmoothGroup, stats: ActivationStatistics, context: PassContext) throws -> Double? {
        let name = group.activation.name
        guard let reservoir = rows?[name], reservoir.rowCount > 0, reservoir.channels == group.channels else {
            context.warning("alpha=auto: no sampled rows of '\(name)' (run calibrate{rows=\(Calibrate.rowsOption.defaultValue)} in the same pipeline); using α \(Smooth.defaultAlpha)")
            return nil
        }
        let (x, rowWeights) = reservoir.weightedRows()
        let r = rowWeights.count, k = group.channels
        let weights = group.layers.map { Self.kMajorWeight($0) }
        let references = zip(group.layers, weights).map { layer, w in Self.matmul(x, w, rows: r, k: k, n: layer.outputChannels) }
        // Per layer and row: the weight of that row's squared error (relativeError: over the
        // row's squared reference norm, so every token counts alike whatever its magnitude).
        var rowFactors: [[Double]] = []
        var referenceNorm = 0.0
        for (index, layer) in group.layers.enumerated() {
            let n = layer.outputChannels
            var factors = [Double](repeating: 0, count: r)
            for i in 0..<r {
                let norm = references[index][(i * n)..<((i + 1) * n)].reduce(0.0) { $0 + Double($1) * Double($1) }
                factors[i] = relativeError ? (norm > 0 ? rowWeights[i] / norm : 0) : rowWeights[i]
                referenceNorm += factors[i] * norm
            }
            rowFactors.append(factors)
        }
        guard referenceNorm > 0 else { return nil }

        var best = (alpha: Smooth.defaultAlpha, error: Double.infinity)
        for alpha in grid {
            let s = Smoother.factors(for: group, stats: stats, alpha: alpha)
            let smoothedStats = try stats.dividingChannels(by: s)
            var xs = x
            for i in 0..<r { for j in 0..<k { xs[i * k + j] /= s[j] } }
            let xq = fakeQuantizeActivation(xs, rows: r, k: k, staticAbsMax: smoothedStats.absMax)
            var error = 0.0
            for (index, layer) in group.layers.enumerated() {
                let n = layer.outputChannels
                var w = weights[index]
                for i in 0..<k { for j in 0..<n { w[i * n + j] *= s[i] } }
                let y = Self.matmul(xq, fakeQuantizeWeight(w, k: k, n: n), rows: r, k: k, n: n)
                let reference = references[index], factors = rowFactors[index]
                if !relativeError && reservoir.peakRowCount == 0 {
                    // Every row weighs 1: the plain sum.
                    for (a, b) in zip(y, reference) { error += Double(a - b) * Double(a - b) }
                    continue
                }
                for i in 0..<r {
                    var rowError = 0.0
                    for j in (i * n)..<((i + 1) * n) { rowError += Double(y[j] - reference[j]) * Double(y[j] - reference[j]) }
                    error += factors[i] * rowError
                }
            }
            if error < best.error { best = (alpha, error) }
        }
        context.remark("alpha=auto: '\(name)' → α \(best.alpha) (relative error \(best.error / referenceNorm))")
        return best.alpha
    }

    /// Q/DQ of sampled rows under `policy` (O3: the calibrated range; O2: the sample's range;
    /// O1: each row's range).
    private func fakeQuantizeActivation(_ x: [Float], rows r: Int, k: Int, staticAbsMax: Float) -> [Float] {
        var out = x
        func quantize(_ range: Range<Int>, absMax: Float) {
            let scale = Int8Quantization.activationScale(absMax: absMax)
            for i in range {
                // Activations: QuantizeLinear's int8 range, as the written graph quantizes them.
                out[i] = Int8Codes.code(x[i], scale: scale, in: Int8Codes.full) * scale
            }
        }
        switch policy {
        case .O3: quantize(0..<x.count, absMax: staticAbsMax)
        case .O2: quantize(0..<x.count, absMax: x.reduce(0) { Swift.max($0, Swift.abs($1)) })
        case .O1:
            for i in 0..<r {
                let row = (i * k)..<((i + 1) * k)
                quantize(row, absMax: x[row].reduce(0) { Swift.max($0, Swift.abs($1)) })
            }
        }
        return out
    }

    private func fakeQuantizeWeight(_ w: [Float], k: Int, n: Int) -> [Float] {
        var scales = [Float](repeating: 0, count: perChannelWeights ? n : 1)
        for i in 0..<k {
            for j in 0..<n {
                let c = perChannelWeights ? j : 0
                scales[c] = Swift.max(scales[c], Swift.abs(w[i * n + j]))
            }
        }
        scales = scales.map(Int8Quantization.weightScale)
        var out = w
        for i in 0..<k {
            for j in 0..<n {
                let scale = scales[perChannelWeights ? j : 0]
                out[i * n + j] = Float(Int8Quantization.quantize(w[i * n + j], scale: scale)) * scale
            }
        }
        return out
    }

    /// The weight as `[K, N]` row-major whatever its stored layout.
    static func kMajorWeight(_ layer: LinearLayer) -> [Float] {
        let w = layer.weightTensor.floatElements() ?? []
        guard layer.transposed else { return w }
        let (k, n) = (layer.inputChannels, layer.outputChannels)
        var out = [Float](repeating: 0, count: k * n)
        for i in 0..<k { for j in 0..<n { out[i * n + j] = w[j * k + i] } }
        return out
    }

    /// `[rows, k] × [k, n]`.
    static func matmul(_ a: [Float], _ b: [Float], rows: Int, k: Int, n: Int) -> [Float] {
        var c = [Float](repeating: 0, count: rows * n)
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    for i in 0..<rows {
                        for p in 0..<k {
                            let av = a[i * k + p]
                            if av == 0 { continue }
                            let bRow = p * n, cRow = i * n
                            for j in 0..<n { c[cRow + j] += av * b[bRow + j] }
                        }
                    }
                }
            }
        }
        return c
    }
}
