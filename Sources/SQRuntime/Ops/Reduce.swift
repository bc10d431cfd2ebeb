import SQIR

/// Reduce* over any set of axes (from the attribute or, in newer opsets, the input),
/// keepdims, noop_with_empty_axes; ArgMax/ArgMin; CumSum.
enum Reduction: Sendable {
    case sum, mean, max, min, prod, l1, l2, sumSquare, logSum, logSumExp
}

struct ReduceKernel: OpKernel {
    let reduction: Reduction
    let keepDims: Bool
    let noopWithEmptyAxes: Bool
    /// The `axes` attribute (older opsets); nil means read input 1.
    let attributeAxes: [Int]?
    let axesFromInput: Bool

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        try computingHalfInFloat(inputs, widen: [0], pool) { ins in
            let x = try required(ins, 0)
            var axes = attributeAxes ?? []
            if axesFromInput, ins.count > 1, let t = ins[1] { axes = try t.intValues("axes") }
            if axes.isEmpty {
                if noopWithEmptyAxes { return [x] }
                axes = Array(0..<x.rank)
            }
            let reduced = Set(try axes.map { try normalizedAxis($0, rank: x.rank) })
            // float32 over trailing axes: contiguous rows.
            if x.dtype == .float, let first = reduced.min(), reduced.count == x.rank - first {
                let outShape = keepDims ? x.shape.enumerated().map { $0.offset >= first ? 1 : $0.element } : Array(x.shape[..<first])
                if let fast = try floatReduceRows(x, rows: x.shape[..<first].reduce(1, *), n: x.shape[first...].reduce(1, *),
                                                  reduction: reduction, outShape: outShape, pool) {
                    return [fast]
                }
            }
            return [try ReduceComputation(reduction: reduction, x: x, reduced: reduced, keepDims: keepDims, pool: pool).dispatch(x.dtype)]
        }
    }
}

/// Element offsets of the kept positions (one per output element) and of the reduced
/// positions (added to each kept offset), in row-major order.
private func reductionOffsets(_ shape: [Int], reduced: Set<Int>) -> (kept: [Int], inner: [Int]) {
    let strides = contiguousStrides(shape)
    func offsets(_ axes: [Int]) -> [Int] {
        var out = [0]
        for a in axes {
            var next: [Int] = []
            next.reserveCapacity(out.count * shape[a])
            for base in out { for i in 0..<shape[a] { next.append(base + i * strides[a]) } }
            out = next
        }
        return out
    }
    let all = Array(0..<shape.count)
    return (offsets(all.filter { !reduced.contains($0) }), offsets(all.filter { reduced.contains($0) }))
}

private struct ReduceComputation: NumericComputation {
    let reduction: Reduction, x: Tensor, reduced: Set<Int>, keepDims: Bool, pool: BufferPool

    func run<T: RuntimeNumber>(_ type: T.Type) throws -> Tensor {
        let outShape = keepDims
            ? x.shape.enumerated().map { reduced.contains($0.offset) ? 1 : $0.element }
            : x.shape.enumerated().filter { !reduced.contains($0.offset) }.map(\.element)
        let (kept, inner) = reductionOffsets(x.shape, reduced: reduced)
        let contiguous = inner.enumerated().allSatisfy { $0.offset == $0.element }
        let n = inner.count
        if !T.isFloatingPointType, ![.sum, .max, .min, .prod, .l1, .sumSquare].contains(reduction) {
            throw OpError.unsupportedType(x.dtype)
        }
        return try x.withElements(as: T.self) { src in
            try pool.make(T.self, dtype: x.dtype, shape: outShape) { out in
                let s = try base(src)
                for (i, start) in kept.enumerated() {
                    let p = s + start
                    @inline(__always) func element(_ j: Int) -> T { contiguous ? p[j] : p[inner[j]] }
                    switch reduction {
                    case .max:
                        var m = T.lowest
                        for j in 0..<n { m = T.larger(m, element(j)) }
                        out[i] = m
                    case .min:
                        var m = T.highest
                        for j in 0..<n { m = T.smaller(m, element(j)) }
                        out[i] = m
                    default:
                        if T.isFloatingPointType {
                            out[i] = T(double: floatReduce(n, { element($0).doubleValue }))
                        } else {
                            out[i] = integerReduce(n, element)
                        }
                    }
                }
            }
        }
    }

    @inline(__always)
    private func floatReduce(_ n: Int, _ element: (Int) -> Double) -> Double {
        var acc: Double = reduction == .prod ? 1 : 0
        switch reduction {
        case .sum, .mean, .logSum: for j in 0..<n { acc += element(j) }
        case .prod: for j in 0..<n { acc *= element(j) }
        case .l1: for j in 0..<n { acc += Swift.abs(element(j)) }
        case .l2, .sumSquare: for j in 0..<n { let v = element(j); acc += v * v }
        case .logSumExp:
            var m = -Double.infinity
            for j in 0..<n { m = Swift.max(m, element(j)) }
            if m.isInfinite { m = 0 }
            for j in 0..<n { acc += Double.exponential(element(j) - m) }
            return Double.logarithm(acc) + m
        case .max, .min: break
        }
        switch reduction {
        case .mean: return acc / Double(n)
        case .l2: return acc.squareRoot()
        case .logSum: return Double.logarithm(acc)
        default: return acc
        }
    }

    @inline(__always)
    private func integerReduce<T: RuntimeNumber>(_ n: Int, _ element: (Int) -> T) -> T {
        var acc: T = reduction == .prod ? T.one : .zero
        for j in 0..<n {
            let v = element(j)
            switch reduction {
            case .prod: acc = T.multiply(acc, v)
            case .l1: acc = T.add(acc, T.absolute(v))
            case .sumSquare: acc = T.add(acc, T.multiply(v, v))
            default: acc = T.add(acc, v)
            }
        }
        return acc
    }
}

/// ArgMax / ArgMin along one axis; int64 indices.
struct ArgExtremumKernel: OpKernel {
    let axis: Int, keepDims: Bool, selectLast: Bool, findMax: Bool

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        try computingHalfInFloat(inputs, pool) { ins in
            let x = try required(ins, 0)
            return [try ArgComputation(kernel: self, x: x, pool: pool).dispatch(x.dtype)]
        }
    }
}

private struct ArgComputation: NumericComputation {
    let kernel: ArgExtremumKernel, x: Tensor, pool: BufferPool

    func run<T: RuntimeNumber>(_ type: T.Type) throws -> Tensor {
        let a = try normalizedAxis(kernel.axis, rank: x.rank)
        let outer = x.shape[..<a].reduce(1, *), n = x.shape[a], inner = x.shape[(a + 1)...].reduce(1, *)
        guard n > 0 else { throw OpError("cannot take an arg-extremum over an empty axis") }
        var shape = x.shape
        if kernel.keepDims { shape[a] = 1 } else { shape.remove(at: a) }
        return try x.withElements(as: T.self) { src in
            try pool.make(Int64.self, shape: shape) { out in
                for o in 0..<outer {
                    for i in 0..<inner {
                        let start = o * n * inner + i
                        var best = src[start], bestIndex = 0
                        for k in 1..<n {
                            let v = src[start + k * inner]
                            let better = kernel.findMax ? (v > best || (kernel.selectLast && v == best))
                                                        : (v < best || (kernel.selectLast && v == best))
                            if better { best = v; bestIndex = k }
                        }
                        out[o * inner + i] = Int64(bestIndex)
                    }
                }
            }
        }
    }
}

struct CumSumKernel: OpKernel {
    let exclusive: Bool, reverse: Bool

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        try computingHalfInFloat(inputs, widen: [0], pool) { ins in
            let x = try required(ins, 0)
            let axisValues = try required(ins, 1, "axis input").intValues("axis")
            guard axisValues.count == 1 else { throw OpError("axis must be a scalar") }
            let a = try normalizedAxis(axisValues[0], rank: x.rank)
            return [try CumSumComputation(x: x, axis: a, exclusive: exclusive, reverse: reverse, pool: pool).dispatch(x.dtype)]
        }
    }
}

private struct CumSumComputation: NumericComputation {
    let x: Tensor, axis: Int, exclusive: Bool, reverse: Bool, pool: BufferPool

    func run<T: RuntimeNumber>(_ type: T.Type) throws -> Tensor {
        let outer = x.shape[..<axis].reduce(1, *), n = x.shape[axis], inner = x.shape[(axis + 1)...].reduce(1, *)
        return try x.withElements(as: T.self) { src in
            try pool.make(T.self, dtype: x.dtype, shape: x.shape) { out in
                for o in 0..<outer {
                    for i in 0..<inner {
                        var acc = T.zero
                        for step in 0..<n {
                            let k = reverse ? n - 1 - step : step
                            let at = (o * n + k) * inner + i
                            if exclusive { out[at] = acc; acc = T.add(acc, src[at]) } else { acc = T.add(acc, src[at]); out[at] = acc }
                        }
                    }
                }
            }
        }
    }
}
