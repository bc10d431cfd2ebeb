import SQIR

/// Running statistics of one activation (one IR value) over calibration samples.
///
/// Reduced as samples stream: every observation folds a tensor into per-channel minima and
/// maxima along the last axis (the "channel" a MatMul contracts over), per-tensor min / max,
/// the observed dims, and optionally a histogram of |x|. Memory is flat in the number of
/// samples; activations are never kept. Two statistics of the same value merge exactly
/// (minima and maxima are associative), so calibration can be split and merged later.
///
/// Channel minima and maxima (not only max |x|) are kept so that smoothing, which divides
/// channel j by a positive `s_j`, can update every figure here exactly (`scaleChannels`).
public struct ActivationStatistics: Codable, Sendable, Equatable {
    /// Minimum of each channel (last axis). Empty when the last axis varied between
    /// observations (e.g. the `Kᵀ` operand of attention, whose last axis is the sequence).
    public private(set) var channelMin: [Float] = []
    /// Maximum of each channel (last axis); same length as `channelMin`.
    public private(set) var channelMax: [Float] = []
    /// Per-tensor minimum and maximum over every element seen (0 when nothing was seen).
    public private(set) var min: Float = 0
    public private(set) var max: Float = 0
    /// Number of tensors observed (one per calibration sample run).
    public private(set) var sampleCount: Int = 0
    /// Number of elements observed in total.
    public private(set) var elementCount: Int = 0
    /// Dims seen, with -1 where a dim differed between observations (e.g. sequence length).
    public private(set) var dims: [Int] = []
    /// Histogram of |x| (for percentile clipping); nil unless requested at calibration.
    public private(set) var histogram: AbsHistogram?
    /// Set once per-channel figures were given up (the last axis varied, or not tracked).
    public private(set) var channelsDropped = false

    public init() {}

    /// max(|min|, |max|): the per-tensor range a symmetric quantizer needs.
    public var absMax: Float { Swift.max(Swift.abs(min), Swift.abs(max)) }

    /// max |x| of each channel (the SmoothQuant `act_scales`); empty without channel data.
    /// A channel that only ever held NaN reports 0 (a dead channel).
    public var channelAbsMax: [Float] {
        zip(channelMin, channelMax).map { Swift.max(0, -$0, $1) }
    }

    /// True when per-channel figures are available.
    public var hasChannels: Bool { !channelMax.isEmpty }

    /// Per-tensor |x| bound used for a static scale: the `percentile` of the histogram when
    /// given and available, otherwise `absMax`.
    public func clippedAbsMax(percentile: Double?) -> Float {
        guard let percentile, let histogram, percentile < 100 else { return absMax }
        return Swift.min(histogram.percentile(percentile), absMax)
    }

    // MARK: observing

    /// Folds one tensor's elements (row-major, `shape`) into the statistics.
    /// `trackChannels` keeps per-channel figures along the last axis; `histogram` keeps a
    /// histogram of |x|. NaN elements are ignored; infinities are recorded.
    public mutating func observe(_ values: UnsafeBufferPointer<Float>, shape: [Int],
                                 trackChannels: Bool = true, histogram wantHistogram: Bool = false) {
        let channels = shape.last ?? 1
        observeDims(shape)
        sampleCount += 1
        guard values.count > 0 else { return }

        var lo = Float.infinity, hi = -Float.infinity
        for v in values {
            if v < lo { lo = v }
            if v > hi { hi = v }
        }
        let hadElements = elementCount > 0
        if lo <= hi {
            if hadElements {
                min = Swift.min(min, lo)
                max = Swift.max(max, hi)
            } else {
                (min, max) = (lo, hi)
            }
        }
        elementCount += values.count

        if trackChannels && !channelsDropped && channels > 0 && values.count % channels == 0 {
            if !hadElements {
                channelMin = [Float](repeating: .infinity, count: channels)
                channelMax = [Float](repeating: -.infinity, count: channels)
            }
            if channelMax.count == channels {
                reduceChannels(values, channels: channels)
            } else {
                dropChannels()
            }
        } else {
            dropChannels()
        }

        if wantHistogram {
            var h = histogram ?? AbsHistogram()
            h.add(values)
            histogram = h
        }
    }

    private mutating func reduceChannels(_ values: UnsafeBufferPointer<Float>, channels: Int) {
        let rows = values.count / channels
        channelMin.withUnsafeMutableBufferPointer { cmin in
            channelMax.withUnsafeMutableBufferPointer { cmax in
                for r in 0..<rows {
                    let base = r * channels
                    for c in 0..<channels {
                        let v = values[base + c]
                        if v < cmin[c] { cmin[c] = v }
                        if v > cmax[c] { cmax[c] = v }
                    }
                }
            }
        }
    }

    private mutating func observeDims(_ shape: [Int]) {
        if sampleCount == 0 {
            dims = shape
        } else if dims.count != shape.count {
            dims = []
        } else {
            for i in dims.indices where dims[i] != shape[i] { dims[i] = -1 }
        }
    }

    private mutating func dropChannels() {
        channelMin = []
        channelMax = []
        channelsDropped = true
    }

    // MARK: merging and rescaling

    /// Combines statistics of the same value gathered on other samples. Exact: the result
    /// equals observing both sample sets in one run (histograms are re-binned to the wider range).
    public mutating func merge(_ other: ActivationStatistics) {
        guard other.sampleCount > 0 else { return }
        guard sampleCount > 0 else { self = other; return }
        if other.elementCount > 0 {
            if elementCount == 0 { (min, max) = (other.min, other.max) } else {
                min = Swift.min(min, other.min)
                max = Swift.max(max, other.max)
            }
        }
        if !channelsDropped && !other.channelsDropped && elementCount > 0 && other.elementCount > 0
            && channelMax.count == other.channelMax.count {
            for c in channelMax.indices {
                channelMin[c] = Swift.min(channelMin[c], other.channelMin[c])
                channelMax[c] = Swift.max(channelMax[c], other.channelMax[c])
            }
        } else if elementCount == 0 && !other.channelsDropped {
            (channelMin, channelMax) = (other.channelMin, other.channelMax)
        } else if other.elementCount > 0 || other.channelsDropped {
            dropChannels()
        }
        if dims.count == other.dims.count {
            for i in dims.indices where dims[i] != other.dims[i] { dims[i] = -1 }
        } else {
            dims = []
        }
        switch (histogram, other.histogram) {
        case (var mine?, let theirs?): mine.merge(theirs); histogram = mine
        default: histogram = nil
        }
        sampleCount += other.sampleCount
        elementCount += other.elementCount
    }

    /// The statistics of `x / s` (channel j divided by `divisors[j] > 0`), exact for every
    /// per-channel and per-tensor figure. The histogram cannot be rescaled per channel and
    /// is dropped (recalibrate after smoothing to clip by percentile).
    public func dividingChannels(by divisors: [Float]) throws -> ActivationStatistics {
        guard divisors.count == channelMax.count else {
            throw IRError(reason: "cannot rescale statistics: \(channelMax.count) channels, \(divisors.count) factors")
        }
        var out = self
        for c in divisors.indices {
            guard divisors[c] > 0, divisors[c].isFinite else {
                throw IRError(reason: "smoothing factor \(divisors[c]) of channel \(c) is not a positive finite number")
            }
            out.channelMin[c] = channelMin[c] / divisors[c]
            out.channelMax[c] = channelMax[c] / divisors[c]
        }
        if elementCount > 0, let lo = out.channelMin.min(), let hi = out.channelMax.max() {
            out.min = lo
            out.max = hi
        }
        out.histogram = nil
        return out
    }
}
