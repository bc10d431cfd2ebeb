import SQIR

/// Index arithmetic of Shape and Slice that shape inference and `fold-constants` share.
enum ShapeKernels {
    /// Shape-15 `start`/`end` clamped into 0...rank.
    static func shapeRange(rank: Int, start: Int?, end: Int?) -> (Int, Int) {
        func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + rank : v, 0), rank) }
        return (clamp(start ?? 0), clamp(end ?? rank))
    }

    /// Elements of `start..<end` by `step` (either sign) after clamping; 0 when empty.
    /// Overflow-safe for any Int64 inputs within the clamped ranges.
    static func sliceCount(from start: Int64, to end: Int64, step: Int64) -> Int {
        guard step != 0, step != .min else { return 0 }
        if step > 0 { return end > start ? Int((end - start - 1) / step + 1) : 0 }
        return start > end ? Int((start - end - 1) / -step + 1) : 0
    }
}
