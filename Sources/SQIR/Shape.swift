/// One dimension of a value's static type: a known size, a named symbol (`batch`), or unknown.
public enum Dim: Hashable, Sendable, CustomStringConvertible {
    case known(Int)
    case symbolic(String)
    case unknown

    public var value: Int? { if case .known(let v) = self { return v } else { return nil } }

    public var description: String {
        switch self {
        case .known(let v): return String(v)
        case .symbolic(let s): return s
        case .unknown: return "?"
        }
    }
}

/// The static type of a value: element type and (optionally) rank and dims.
/// `dims == nil` means the rank is unknown.
public struct TensorType: Hashable, Sendable, CustomStringConvertible {
    public var dtype: DType
    public var dims: [Dim]?

    public init(_ dtype: DType, _ dims: [Dim]?) {
        self.dtype = dtype
        self.dims = dims
    }

    public init(_ dtype: DType, shape: [Int]) {
        self.init(dtype, shape.map { .known($0) })
    }

    public var rank: Int? { dims?.count }

    /// All dims known: the concrete shape.
    public var staticShape: [Int]? {
        guard let dims else { return nil }
        var out: [Int] = []
        out.reserveCapacity(dims.count)
        for d in dims {
            guard let v = d.value else { return nil }
            out.append(v)
        }
        return out
    }

    /// Printed as `f32[batch,seq,64]`, `f32[]` (scalar) or `f32[*]` (unknown rank).
    public var description: String {
        guard let dims else { return "\(dtype.shortName)[*]" }
        return "\(dtype.shortName)[\(dims.map(\.description).joined(separator: ","))]"
    }
}

/// Checked element count of a shape: nil when a dim is negative or the product overflows.
public func checkedElementCount(_ shape: [Int]) -> Int? {
    var count = 1
    for d in shape {
        guard d >= 0 else { return nil }
        let (p, overflow) = count.multipliedReportingOverflow(by: d)
        if overflow { return nil }
        count = p
    }
    return count
}
