import SQIR

/// How `quantize` chooses the clipping range of a static (O3) activation scale,
/// `Δ = range / 127` (`quantize{calibration=…}`):
public enum StaticCalibration: String, Sendable, CaseIterable, Codable {
    /// The range calibration recorded: max |x| over the samples (or, when
    /// `calibrate{percentile=P}` was given, its clipped range). The default; unchanged.
    case minmax
    /// The `percentile`-th percentile of |x| over the samples.
    case percentile
    /// The range that minimises the mean squared error between x and its int8 Q/DQ over the
    /// samples: rounding error of the values inside the range plus clipping error of those
    /// outside (`MagnitudeHistogram.mseOptimalRange`).
    case mse
}

/// A histogram of |x| with logarithmic bins: `binsPerOctave` equal bins in every octave
/// `[2^e, 2^(e+1))` from 2^`minExponent` to 2^`maxExponent` (below: the zero bin; above: the
/// last bin). Every bin is a fixed interval whatever the data, so histograms of the same
/// value merge by adding counts (exact, like the rest of the calibration statistics), and the
/// relative resolution is the same at every magnitude: 1/32 of an octave (≈ 2.2%), which a
/// value with |x| ≈ 3200 and most of its mass below 1 (SmolLM2's down_proj inputs) needs —
/// `AbsHistogram`'s 2048 linear bins over [0, 4096) would put nearly every value in bin 0.
/// Memory is fixed (≈ 27 KB per value), flat in the number of samples.
public struct MagnitudeHistogram: Sendable, Equatable {
    public static let binsPerOctave = 32
    public static let minExponent = -40
    public static let maxExponent = 64
    static let mantissaShift = 23 - 5  // log2(binsPerOctave) mantissa bits kept
    static let firstBinBits = UInt32(127 + minExponent) << 23
    public static let binCount = (maxExponent - minExponent) * binsPerOctave

    /// Count per bin.
    public private(set) var counts = [UInt64](repeating: 0, count: MagnitudeHistogram.binCount)
    /// Values with |x| < 2^minExponent (zeros included): they quantize to 0 under any range
    /// that matters.
    public private(set) var zeroCount: UInt64 = 0
    /// Largest finite |x| added (bounds the top bin's interval).
    public private(set) var maxMagnitude: Float = 0

    public init() {}

    /// Finite values counted (zero bin included).
    public var total: UInt64 { counts.reduce(zeroCount, &+) }

    /// The bin of a finite |x| ≥ 2^minExponent.
    @inline(__always)
    static func bin(ofMagnitudeBits bits: UInt32) -> Int {
        Swift.min(Int((bits &- firstBinBits) >> UInt32(mantissaShift)), binCount - 1)
    }

    /// Lower edge of bin `i` (the upper edge is `lowerEdge(i + 1)`).
    public static func lowerEdge(_ i: Int) -> Double {
        Double(Float(bitPattern: firstBinBits &+ (UInt32(i) << UInt32(mantissaShift))))
    }

    /// Adds the finite elements of `values` (NaN and infinities are not counted).
    public mutating func add(_ values: UnsafeBufferPointer<Float>) {
        var peak = maxMagnitude
        var zeros: UInt64 = 0
        counts.withUnsafeMutableBufferPointer { bins in
            for v in values {
                let m = Swift.abs(v)
                guard m.isFinite else { continue }
                let bits = m.bitPattern
                if bits < Self.firstBinBits { zeros &+= 1; continue }
                if m > peak { peak = m }
                bins[Self.bin(ofMagnitudeBits: bits)] &+= 1
            }
        }
        zeroCount &+= zeros
        maxMagnitude = peak
    }

    /// Adds another histogram's counts (exact: the bins are the same intervals).
    public mutating func merge(_ other: MagnitudeHistogram) {
        for i in counts.indices { counts[i] &+= other.counts[i] }
        zeroCount &+= other.zeroCount
        maxMagnitude = Swift.max(maxMagnitude, other.maxMagnitude)
    }

    /// The interval bin `i` stands for, its top cut at `maxMagnitude`.
    private func interval(_ i: Int) -> (lo: Double, hi: Double) {
        let lo = Self.lowerEdge(i)
        return (lo, Swift.max(lo, Swift.min(Self.lowerEdge(i + 1), Double(maxMagnitude))))
    }

    /// The nonempty bins, lowest first.
    private var occupied: [Int] { counts.indices.filter { counts[$0] > 0 } }

    /// The `percentile`-th percentile of |x| with numpy's default ("linear") definition, the
    /// value at rank `p/100 · (n − 1)` of the sorted magnitudes, estimated by spreading each
    /// bin's values evenly over its interval: within one bin's width (2.2%) of numpy's value.
    public func percentile(_ percentile: Double) -> Float {
        let n = total
        guard n > 0 else { return 0 }
        let rank = Swift.min(Swift.max(percentile, 0), 100) / 100 * Double(n - 1)
        var below = Double(zeroCount)  // values ranked before the current bin
        if rank < below { return 0 }
        for i in occupied {
            let c = Double(counts[i])
            if rank < below + c {
                let (lo, hi) = interval(i)
                // The bin's c values sit at lo + (k + 0.5) / c · (hi − lo), k = 0 … c − 1.
                let position = Swift.min(Swift.max((rank - below + 0.5) / c, 0), 1)
                return Float(lo + position * (hi - lo))
            }
            below += c
        }
        return maxMagnitude
    }

    /// Mean squared error of symmetric int8 Q/DQ with range `range` (Δ = range / 127) over the
    /// histogram, each bin's values spread evenly over its interval: the rounding error of
    /// the values below `range` and the clipping error `(|x| − range)²` of those above.
    /// Computed in closed form per bin (`roundingErrorIntegral`).
    public func quantizationError(range: Double) -> Double {
        let n = total
        guard n > 0, range > 0 else { return 0 }
        let step = range / 127
        var sum = 0.0
        for i in occupied {
            let (lo, hi) = interval(i)
            let c = Double(counts[i])
            guard hi > lo else {
                // A single magnitude (the bin's lower edge is the maximum).
                let x = lo
                let e = x >= range ? x - range : x - step * (x / step).rounded(.toNearestOrEven)
                sum += c * e * e
                continue
            }
            var integral = 0.0
            if lo < range {
                let top = Swift.min(hi, range)
                integral += Self.roundingErrorIntegral(top, step: step) - Self.roundingErrorIntegral(lo, step: step)
            }
            if hi > range {
                let from = Swift.max(lo, range) - range
                let to = hi - range
                integral += (to * to * to - from * from * from) / 3
            }
            sum += c * integral / (hi - lo)
        }
        return sum / Double(n)
    }

    /// `∫₀ˣ (t − Δ·round(t/Δ))² dt` for x ≥ 0: whole periods contribute Δ³/12 each, the rest
    /// `r³/3` with `r = x − Δ·round(x/Δ)` in [−Δ/2, Δ/2].
    static func roundingErrorIntegral(_ x: Double, step: Double) -> Double {
        let periods = (x / step + 0.5).rounded(.down)
        let r = x - periods * step
        return periods * step * step * step / 12 + r * r * r / 3
    }

    /// The range in (0, maxMagnitude] with the smallest `quantizationError`: every bin edge
    /// from the median up, and the maximum itself. Ties keep the larger range.
    public func mseOptimalRange() -> Float {
        guard total > 0, maxMagnitude > 0 else { return maxMagnitude }
        let median = Double(percentile(50))
        let top = Double(maxMagnitude)
        var candidates = [top]
        for i in occupied.first.map({ $0 ... (Self.binCount - 1) }) ?? 0...(-1) {
            let edge = Self.lowerEdge(i + 1)
            if edge >= top { break }
            if edge >= median { candidates.append(edge) }
        }
        var best = (range: top, error: quantizationError(range: top))
        for candidate in candidates.dropFirst() {
            let error = quantizationError(range: candidate)
            if error < best.error { best = (candidate, error) }
        }
        return Float(best.range)
    }

    /// The range `method` chooses (`percentile` for `.percentile`); nil for `.minmax`, which
    /// keeps the calibrated range.
    public func range(_ method: StaticCalibration, percentile p: Double) -> Float? {
        switch method {
        case .minmax: return nil
        case .percentile: return percentile(p)
        case .mse: return mseOptimalRange()
        }
    }
}

/// Per-tensor clipping of a linear layer's weight before per-tensor quantization
/// (`quantize{weight-calibration=mse}`): the range minimising the weight's mean squared Q/DQ
/// error, found on a `MagnitudeHistogram` of |W|. Weights are known exactly, so this needs no
/// calibration data.
public enum WeightCalibration: String, Sendable, CaseIterable, Codable {
    /// Δw = max |W| / 127 (the default; unchanged).
    case max
    /// Δw = r / 127, r the MSE-optimal range of |W| (per-tensor weights only).
    case mse

    /// The per-tensor range of `layer`'s weight under this method (nil: max |W|).
    func perTensorRange(_ layer: LinearLayer) -> Float? {
        guard self == .mse else { return nil }
        var histogram = MagnitudeHistogram()
        layer.weightTensor.withFloatElements { histogram.add($0) }
        return histogram.mseOptimalRange()
    }
}

extension StaticCalibration: PassOptionChoice {}
extension WeightCalibration: PassOptionChoice {}
