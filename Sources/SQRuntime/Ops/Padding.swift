import SQIR

/// Pad (constant, edge, reflect, wrap; negative pads crop), Tile and Trilu.

struct PadKernel: OpKernel {
    enum Mode: String, Sendable { case constant, edge, reflect, wrap }
    let mode: Mode
    /// Opset < 11 keeps pads in an attribute.
    let attributePads: [Int]?
    let attributeValue: Float

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let x = try required(inputs, 0)
        let r = x.rank
        let pads = try attributePads ?? required(inputs, 1, "pads input").intValues("pads")
        let axes = try (inputs.count > 3 ? inputs[3] : nil)?.intValues("axes").map { try normalizedAxis($0, rank: r) } ?? Array(0..<r)
        guard pads.count == 2 * axes.count else { throw OpError("pads has \(pads.count) entries; expected \(2 * axes.count)") }
        var begin = [Int](repeating: 0, count: r), end = [Int](repeating: 0, count: r)
        for (i, a) in axes.enumerated() { begin[a] = pads[i]; end[a] = pads[i + axes.count] }
        var sizes: [Int] = []
        for d in 0..<r {
            let (grown, overflowA) = x.shape[d].addingReportingOverflow(begin[d])
            let (size, overflowB) = grown.addingReportingOverflow(end[d])
            guard !overflowA, !overflowB, size >= 0 else { throw OpError("pads \(pads) do not fit dim \(d) of \(x.shape)") }
            sizes.append(size)
        }
        try checkOutputSize(sizes, x.dtype, pool)
        var maps: [[Int]] = []
        for d in 0..<r {
            let dim = x.shape[d]
            let size = sizes[d]
            guard size == 0 || dim > 0 || mode == .constant || size == dim else {
                throw OpError("cannot \(mode.rawValue)-pad an empty dim")
            }
            maps.append((0..<size).map { c -> Int in
                let s = c - begin[d]
                if s >= 0 && s < dim { return s }
                switch mode {
                case .constant: return -1
                case .edge: return s < 0 ? 0 : dim - 1
                case .wrap: return ((s % dim) + dim) % dim
                case .reflect:
                    if dim == 1 { return 0 }
                    let period = 2 * (dim - 1)
                    var m = ((s % period) + period) % period
                    if m >= dim { m = period - m }
                    return m
                }
            })
        }
        var fill: Tensor?
        if mode == .constant {
            if inputs.count > 2, let v = inputs[2] {
                guard v.count == 1, v.dtype == x.dtype else { throw OpError("constant_value must be a scalar of the input's type") }
                fill = v
            } else if attributeValue != 0 {
                fill = try cast(Tensor(scalar: attributeValue), to: x.dtype, pool)
            }
        }
        return [try indexMappedCopy(x, maps: maps, fill: fill, pool)]
    }
}

/// Refuses an output shape beyond the pool's size limit before index maps are built for it.
/// The maps hold one Int per coordinate of every dim, so their total is bounded too: an
/// empty output ([0, 2^41]) has no elements but would still need a 2^44-byte map.
private func checkOutputSize(_ shape: [Int], _ dtype: DType, _ pool: BufferPool) throws {
    guard let count = checkedElementCount(shape), count <= pool.maxTensorBytes / Swift.max(dtype.byteSize ?? 1, 1) else {
        throw OpError("output shape \(shape) exceeds the limit of \(pool.maxTensorBytes) bytes")
    }
    var mapEntries = 0
    for dim in shape {
        let (sum, overflow) = mapEntries.addingReportingOverflow(dim)
        guard !overflow, sum <= pool.maxTensorBytes / MemoryLayout<Int>.size else {
            throw OpError("output shape \(shape) needs index maps beyond the limit of \(pool.maxTensorBytes) bytes")
        }
        mapEntries = sum
    }
}

struct TileKernel: OpKernel {
    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let x = try required(inputs, 0)
        let repeats = try required(inputs, 1, "repeats input").intValues("repeats")
        guard repeats.count == x.rank, repeats.allSatisfy({ $0 >= 0 }) else {
            throw OpError("repeats \(repeats) must have one non-negative entry per dim of \(x.shape)")
        }
        let sizes = try zip(x.shape, repeats).map { dim, n in
            let (size, overflow) = dim.multipliedReportingOverflow(by: n)
            guard !overflow else { throw OpError("repeats \(repeats) overflow the shape \(x.shape)") }
            return size
        }
        try checkOutputSize(sizes, x.dtype, pool)
        let maps = zip(x.shape, sizes).map { dim, size in (0..<size).map { $0 % Swift.max(dim, 1) } }
        return [try indexMappedCopy(x, maps: maps, fill: nil, pool)]
    }
}

struct TriluKernel: OpKernel {
    let upper: Bool

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let x = try required(inputs, 0)
        guard x.rank >= 2 else { throw OpError("Trilu needs rank >= 2, got \(x.shape)") }
        var k = 0
        if inputs.count > 1, let t = inputs[1] {
            let v = try t.intValues("k")
            guard v.count == 1 else { throw OpError("k must be a scalar") }
            k = v[0]
        }
        let rows = x.shape[x.rank - 2], cols = x.shape[x.rank - 1]
        let out = try pool.copy(x)
        guard let size = x.dtype.byteSize, let bytes = out.storage.mutableBytes, rows * cols > 0 else { return [out] }
        let matrices = x.count / (rows * cols)
        for mIndex in 0..<matrices {
            for i in 0..<rows {
                for j in 0..<cols {
                    let keep = upper ? j - i >= k : j - i <= k
                    if !keep {
                        let at = ((mIndex * rows + i) * cols + j) * size
                        for byte in 0..<size { bytes[at + byte] = 0 }
                    }
                }
            }
        }
        return [out]
    }
}
