import SQIR

/// Copies the elements of a strided view of `src` (element (i0, i1, ...) at
/// `offset + Σ ik * strides[k]`, strides may be negative or zero) into `out` in
/// row-major order. Dims contiguous in both are merged first; unit-stride rows are
/// block copies. Transpose, Slice and Expand are this with different strides.
func stridedCopy<T>(
    _ src: UnsafePointer<T>, offset: Int, strides: [Int], shape: [Int], _ out: UnsafeMutablePointer<T>
) {
    guard let total = checkedElementCount(shape), total > 0 else { return }
    var dims: [Int] = []
    var steps: [Int] = []
    for (d, s) in zip(shape, strides) where d != 1 {
        if let lastDim = dims.last, let lastStep = steps.last, lastStep == s &* d {
            dims[dims.count - 1] = lastDim &* d
            steps[steps.count - 1] = s
        } else {
            dims.append(d)
            steps.append(s)
        }
    }
    let inner = dims.popLast() ?? 1
    let innerStep = steps.popLast() ?? 1
    var index = [Int](repeating: 0, count: dims.count)
    var from = offset
    var to = 0
    while true {
        let p = src + from, o = out + to
        if innerStep == 1 {
            o.update(from: p, count: inner)
        } else {
            for i in 0..<inner { o[i] = p[i &* innerStep] }
        }
        to += inner
        var d = dims.count - 1
        while d >= 0 {
            index[d] += 1
            from += steps[d]
            if index[d] < dims[d] { break }
            from -= steps[d] &* dims[d]
            index[d] = 0
            d -= 1
        }
        if d < 0 { return }
    }
}

/// Runs `stridedCopy` on a tensor of any dtype (elements moved as bit patterns).
func stridedView(_ x: Tensor, offset: Int, strides: [Int], shape: [Int], _ pool: BufferPool) throws -> Tensor {
    struct Copy: BitPatternComputation {
        let x: Tensor, offset: Int, strides: [Int], shape: [Int], pool: BufferPool
        func run<T: FixedWidthInteger & UnsignedInteger & TensorElement>(_ type: T.Type) throws -> Tensor {
            try x.storage.bytes.withMemoryRebound(to: T.self) { src in
                try pool.make(T.self, dtype: x.dtype, shape: shape) { out in
                    stridedCopy(try base(src), offset: offset, strides: strides, shape: shape, try base(out))
                }
            }
        }
    }
    return try Copy(x: x, offset: offset, strides: strides, shape: shape, pool: pool).dispatch(x.dtype)
}

/// Output built from per-dim index maps: output coordinate c along dim k reads input
/// coordinate maps[k][c], or `fill` when that is -1 (Pad, Tile).
func indexMappedCopy(_ x: Tensor, maps: [[Int]], fill: Tensor?, _ pool: BufferPool) throws -> Tensor {
    struct Copy: BitPatternComputation {
        let x: Tensor, maps: [[Int]], fill: Tensor?, pool: BufferPool
        func run<T: FixedWidthInteger & UnsignedInteger & TensorElement>(_ type: T.Type) throws -> Tensor {
            let shape = maps.map(\.count)
            let strides = contiguousStrides(x.shape)
            let fillValue: T = fill.map { $0.storage.bytes.loadUnaligned(as: T.self) } ?? 0
            return try x.storage.bytes.withMemoryRebound(to: T.self) { src in
                try pool.make(T.self, dtype: x.dtype, shape: shape) { out in
                    guard out.count > 0, let lastMap = maps.last else {
                        if out.count == 1, let v = src.first { out[0] = v }
                        return
                    }
                    let r = maps.count
                    var index = [Int](repeating: 0, count: r - 1)
                    var o = 0
                    while true {
                        var from = 0
                        var valid = true
                        for k in 0..<(r - 1) {
                            let m = maps[k][index[k]]
                            if m < 0 { valid = false; break }
                            from += m * strides[k]
                        }
                        for m in lastMap {
                            out[o] = valid && m >= 0 ? src[from + m] : fillValue
                            o += 1
                        }
                        var d = r - 2
                        while d >= 0 {
                            index[d] += 1
                            if index[d] < maps[d].count { break }
                            index[d] = 0
                            d -= 1
                        }
                        if d < 0 { return }
                    }
                }
            }
        }
    }
    return try Copy(x: x, maps: maps, fill: fill, pool: pool).dispatch(x.dtype)
}
