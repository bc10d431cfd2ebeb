/// A histogram of |x| with `binCount` equal bins over `[0, upperBound)`, where `upperBound`
/// is a power of two that only grows.
///
/// Growing the range doubles `upperBound` and merges neighbouring bin pairs, which is exact
/// because the bin edges of the narrower range are edges of the wider one. Two histograms
/// therefore merge exactly (both are brought to the wider bound, then counts add), so
/// calibration stays mergeable with percentile clipping on. Non-finite values are not binned.
public struct AbsHistogram: Codable, Sendable, Equatable {
    /// Bins per histogram (a power of two, so pairwise merging keeps the count).
    public static let binCount = 2048

    /// Upper edge of the last bin; a power of two (0 until the first finite value).
    public private(set) var upperBound: Float = 0
    /// Count per bin; bin i holds |x| in `[i, i+1) · upperBound / binCount`.
    public private(set) var counts: [UInt64] = [UInt64](repeating: 0, count: AbsHistogram.binCount)

    public init() {}

    /// Number of values binned.
    public var total: UInt64 { counts.reduce(0, &+) }

    /// Adds the finite elements of `values`.
    public mutating func add(_ values: UnsafeBufferPointer<Float>) {
        var peak: Float = 0
        for v in values where v.isFinite { peak = Swift.max(peak, Swift.abs(v)) }
        grow(toCover: peak)
        guard upperBound > 0 else {
            // Every finite value is 0: they all fall in bin 0.
            counts[0] &+= UInt64(values.lazy.filter(\.isFinite).count)
            return
        }
        let scale = Float(Self.binCount) / upperBound
        let last = Self.binCount - 1
        counts.withUnsafeMutableBufferPointer { bins in
            for v in values where v.isFinite {
                let i = Int(Swift.abs(v) * scale)
                bins[Swift.min(i, last)] &+= 1
            }
        }
    }

    /// Merges another histogram (exact; see the type's note).
    public mutating func merge(_ other: AbsHistogram) {
        var theirs = other
        widen(to: other.upperBound)
        theirs.widen(to: upperBound)
        for i in counts.indices { counts[i] &+= theirs.counts[i] }
    }

    /// The |x| below which `percentile` % of the values lie (upper edge of the bin that
    /// reaches it); 0 for an empty histogram.
    public func percentile(_ percentile: Double) -> Float {
        let all = total
        guard all > 0, upperBound > 0 else { return 0 }
        let target = Double(all) * Swift.min(Swift.max(percentile, 0), 100) / 100
        var running: UInt64 = 0
        for (i, c) in counts.enumerated() {
            running &+= c
            if Double(running) >= target {
                return Float(i + 1) * (upperBound / Float(Self.binCount))
            }
        }
        return upperBound
    }

    /// Widens the range so that `value` < `upperBound`.
    mutating func grow(toCover value: Float) {
        guard value > 0, value.isFinite else { return }
        var bound = Float(sign: .plus, exponent: value.exponent, significand: 1)
        if bound <= value { bound *= 2 }
        widen(to: bound)
    }

    /// Widens the range to `bound` (a power of two), doubling and merging bin pairs.
    mutating func widen(to bound: Float) {
        guard bound > upperBound, bound.isFinite else { return }
        if upperBound == 0 {
            // Values seen so far were all 0 and sit in bin 0, which stays bin 0.
            upperBound = bound
            return
        }
        while upperBound < bound {
            var merged = [UInt64](repeating: 0, count: Self.binCount)
            for i in 0..<(Self.binCount / 2) { merged[i] = counts[2 * i] &+ counts[2 * i + 1] }
            counts = merged
            upperBound *= 2
        }
    }
}
