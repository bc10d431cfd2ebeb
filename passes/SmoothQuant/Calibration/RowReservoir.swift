import SQIR

/// A fixed-size uniform sample of an activation's rows (tokens), kept while calibrating so
/// that `smooth{alpha=auto}` can measure quantization error without storing activations.
/// Reservoir sampling (Vitter's algorithm R) with a seeded generator: memory is
/// `capacity × channels` floats whatever the number of samples, and the same samples give the
/// same rows.
///
/// With `peakCapacity` > 0 it also keeps the `peakCapacity` rows of largest max |x| (the
/// "massive activation" tokens a uniform sample of a few dozen rows almost never holds), so
/// `alpha=auto` can count them exactly and the uniform sample for the rest (`weightedRows`).
public struct RowReservoir: Sendable {
    public let channels: Int
    public let capacity: Int
    /// Rows kept, row-major (`rowCount × channels`).
    public private(set) var values: [Float] = []
    /// Rows offered so far.
    public private(set) var seen = 0
    private var random: SplitMix64
    public let peakCapacity: Int
    /// The rows of largest max |x| seen so far (`peakRowCount × channels`), and their max |x|.
    public private(set) var peakValues: [Float] = []
    public private(set) var peakAbsMax: [Float] = []

    public init(channels: Int, capacity: Int, seed: UInt64, peakCapacity: Int = 0) {
        self.channels = channels
        self.capacity = capacity
        self.random = SplitMix64(seed: seed)
        self.peakCapacity = peakCapacity
    }

    public var rowCount: Int { channels > 0 ? values.count / channels : 0 }
    public var peakRowCount: Int { peakAbsMax.count }

    /// Rows and weights whose weighted sums estimate sums over every row seen. Without peak
    /// rows: the uniform sample, weight 1 each (a sum over it, as before peak rows existed).
    /// With them: the peak rows (weight 1: every row of max |x| above the peaks' smallest is
    /// one of them) plus the uniform rows below that threshold, each weighted by the rows not
    /// among the peaks over the number of such sampled rows (a stratified estimate; the result
    /// is scaled so the weights sum to `rowCount`, keeping the error's scale that of the
    /// uniform-only sum).
    public func weightedRows() -> (values: [Float], weights: [Double]) {
        guard peakCapacity > 0, peakRowCount > 0 else { return (values, [Double](repeating: 1, count: rowCount)) }
        if seen <= peakCapacity { return (peakValues, [Double](repeating: 1, count: peakRowCount)) }
        let threshold = peakAbsMax.min() ?? 0
        var rest: [Float] = []
        var restCount = 0
        for r in 0..<rowCount {
            let row = values[(r * channels)..<((r + 1) * channels)]
            if row.reduce(0, { Swift.max($0, Swift.abs($1)) }) < threshold {
                rest.append(contentsOf: row)
                restCount += 1
            }
        }
        let others = Double(seen - peakRowCount)
        var weights = [Double](repeating: 1, count: peakRowCount)
        if restCount > 0 { weights += [Double](repeating: others / Double(restCount), count: restCount) }
        let scale = Double(Swift.max(rowCount, 1)) / Double(seen)
        return (peakValues + rest, weights.map { $0 * scale })
    }

    private mutating func offerPeak(_ row: UnsafeBufferPointer<Float>) {
        let m = row.reduce(Float(0)) { Swift.max($0, Swift.abs($1)) }
        guard m.isFinite else { return }
        if peakRowCount < peakCapacity {
            peakValues.append(contentsOf: row)
            peakAbsMax.append(m)
            return
        }
        // Replace the smallest peak (the first one on ties: deterministic).
        var smallest = 0
        for i in 1..<peakRowCount where peakAbsMax[i] < peakAbsMax[smallest] { smallest = i }
        guard m > peakAbsMax[smallest] else { return }
        peakValues.replaceSubrange((smallest * channels)..<((smallest + 1) * channels), with: row)
        peakAbsMax[smallest] = m
    }

    /// Offers every row of a `[…, channels]` tensor.
    public mutating func offer(_ data: UnsafeBufferPointer<Float>) {
        guard channels > 0, capacity > 0, data.count % channels == 0 else { return }
        for r in 0..<(data.count / channels) {
            let row = UnsafeBufferPointer(rebasing: data[(r * channels)..<((r + 1) * channels)])
            if peakCapacity > 0 { offerPeak(row) }
            if seen < capacity {
                values.append(contentsOf: row)
            } else {
                let j = Int(random.next() % UInt64(seen + 1))
                if j < capacity {
                    values.replaceSubrange((j * channels)..<((j + 1) * channels), with: row)
                }
            }
            seen += 1
        }
    }
}
