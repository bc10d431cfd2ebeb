import SQIR

/// A fixed-size uniform sample of an activation's rows (tokens), kept while calibrating so
/// that `smooth{alpha=auto}` can measure quantization error without storing activations.
/// Reservoir sampling (Vitter's algorithm R) with a seeded generator: memory is
/// `capacity × channels` floats whatever the number of samples, and the same samples give the
/// same rows.
public struct RowReservoir: Sendable {
    public let channels: Int
    public let capacity: Int
    /// Rows kept, row-major (`rowCount × channels`).
    public private(set) var values: [Float] = []
    /// Rows offered so far.
    public private(set) var seen = 0
    private var random: SplitMix64

    public init(channels: Int, capacity: Int, seed: UInt64) {
        self.channels = channels
        self.capacity = capacity
        self.random = SplitMix64(seed: seed)
    }

    public var rowCount: Int { channels > 0 ? values.count / channels : 0 }

    /// Offers every row of a `[…, channels]` tensor.
    public mutating func offer(_ data: UnsafeBufferPointer<Float>) {
        guard channels > 0, capacity > 0, data.count % channels == 0 else { return }
        for r in 0..<(data.count / channels) {
            let row = UnsafeBufferPointer(rebasing: data[(r * channels)..<((r + 1) * channels)])
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
