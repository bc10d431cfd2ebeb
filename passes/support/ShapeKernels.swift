import SQIR

/// Data-movement kernels on constant arrays (what shape arithmetic in exported graphs uses).
enum ShapeKernels {
    static func shape(of dims: [Int], start: Int?, end: Int?) -> DenseArray {
        let (lo, hi) = shapeRange(rank: dims.count, start: start, end: end)
        let slice = lo < hi ? Array(dims[lo..<hi]) : []
        return DenseArray(dtype: .int64, shape: [slice.count], storage: .ints(slice.map(Int64.init)))
    }

    /// Shape-15 `start`/`end` clamped into 0...rank.
    static func shapeRange(rank: Int, start: Int?, end: Int?) -> (Int, Int) {
        func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + rank : v, 0), rank) }
        return (clamp(start ?? 0), clamp(end ?? rank))
    }

    static func gather(_ data: DenseArray, _ indices: DenseArray, axis rawAxis: Int, node: Node,
                       maxElements: Int) throws -> DenseArray? {
        guard let index = indices.ints, let axis = ShapeMath.axis(rawAxis, rank: data.shape.count) else { return nil }
        let dim = data.shape[axis]
        let outer = data.shape[..<axis].reduce(1, *)
        let inner = data.shape[(axis + 1)...].reduce(1, *)
        guard let count = checkedElementCount([outer, index.count, inner]), count <= maxElements else { return nil }
        var flat: [Int] = []
        flat.reserveCapacity(outer * index.count * inner)
        for o in 0..<outer {
            for raw in index {
                let k = raw < 0 ? Int(raw) + dim : Int(raw)
                guard k >= 0 && k < dim else {
                    throw IRError(node: node, reason: "Gather index \(raw) is out of range for axis \(axis) of size \(dim)")
                }
                for j in 0..<inner { flat.append((o * dim + k) * inner + j) }
            }
        }
        let shape = Array(data.shape[..<axis]) + indices.shape + Array(data.shape[(axis + 1)...])
        return data.take(flat, shape: shape)
    }

    static func unsqueezedShape(_ shape: [Int], axes: [Int]) -> [Int]? {
        let rank = shape.count + axes.count
        var normalized = Set<Int>()
        for a in axes {
            guard let n = ShapeMath.axis(a, rank: rank), normalized.insert(n).inserted else { return nil }
        }
        var out: [Int] = []
        var source = shape.makeIterator()
        for i in 0..<rank {
            if normalized.contains(i) { out.append(1) } else if let d = source.next() { out.append(d) }
        }
        return out
    }

    static func squeezedShape(_ shape: [Int], axes: [Int]?) -> [Int]? {
        guard let axes else { return shape.filter { $0 != 1 } }
        var drop = Set<Int>()
        for a in axes {
            guard let n = ShapeMath.axis(a, rank: shape.count), shape[n] == 1 else { return nil }
            drop.insert(n)
        }
        return shape.enumerated().filter { !drop.contains($0.offset) }.map(\.element)
    }

    /// Reshape's target: 0 copies the input dim (unless allowzero), one -1 is inferred.
    static func reshapedShape(_ input: [Int], _ target: [Int64], allowZero: Bool) -> [Int]? {
        var out: [Int] = []
        var inferred: Int?
        for (i, t) in target.enumerated() {
            if t == -1 {
                guard inferred == nil else { return nil }
                inferred = i
                out.append(1)
            } else if t == 0 && !allowZero {
                guard i < input.count else { return nil }
                out.append(input[i])
            } else {
                guard t >= 0 else { return nil }
                out.append(Int(t))
            }
        }
        let total = input.reduce(1, *)
        if let i = inferred {
            guard let known = checkedElementCount(out), known > 0, total % known == 0 else { return nil }
            out[i] = total / known
        }
        return checkedElementCount(out) == total ? out : nil
    }

    static func concat(_ parts: [DenseArray], axis rawAxis: Int) -> DenseArray? {
        guard let first = parts.first, let axis = ShapeMath.axis(rawAxis, rank: first.shape.count) else { return nil }
        var shape = first.shape
        shape[axis] = 0
        for p in parts {
            guard p.shape.count == first.shape.count,
                  p.shape.indices.allSatisfy({ $0 == axis || p.shape[$0] == first.shape[$0] }) else { return nil }
            shape[axis] += p.shape[axis]
        }
        let outer = first.shape[..<axis].reduce(1, *)
        let isInt = parts.allSatisfy { $0.ints != nil }
        var ints: [Int64] = [], floats: [Double] = []
        for o in 0..<outer {
            for p in parts {
                let block = p.shape[axis...].reduce(1, *)
                let range = (o * block)..<((o + 1) * block)
                if isInt, let v = p.ints { ints.append(contentsOf: v[range]) } else { floats.append(contentsOf: p.floats[range]) }
            }
        }
        return first.with(shape: shape, storage: isInt ? .ints(ints) : .floats(floats))
    }

    static func transpose(_ a: DenseArray, perm: [Int]) -> DenseArray? {
        guard perm.count == a.shape.count, Set(perm) == Set(0..<perm.count) else { return nil }
        let outShape = perm.map { a.shape[$0] }
        let inStrides = ShapeMath.strides(a.shape)
        let count = a.count
        var flat = [Int](repeating: 0, count: count)
        var coordinate = [Int](repeating: 0, count: perm.count)
        for i in 0..<count {
            var index = 0
            for (axis, c) in coordinate.enumerated() { index += c * inStrides[perm[axis]] }
            flat[i] = index
            var axis = perm.count - 1
            while axis >= 0 {
                coordinate[axis] += 1
                if coordinate[axis] < outShape[axis] { break }
                coordinate[axis] = 0
                axis -= 1
            }
        }
        return a.take(flat, shape: outShape)
    }

    /// ONNX Slice: inputs (opset >= 10) or attributes (older), with clamping as specified.
    static func slice(_ a: DenseArray, node: Node, inputs: [DenseArray?], opset: Int) -> DenseArray? {
        let starts: [Int64], ends: [Int64], axesList: [Int64]?, steps: [Int64]?
        if opset < 10 {
            guard let s = node.ints("starts"), let e = node.ints("ends") else { return nil }
            starts = s.map(Int64.init); ends = e.map(Int64.init)
            axesList = node.ints("axes")?.map(Int64.init); steps = nil
        } else {
            guard inputs.count >= 3, let s = inputs[1]?.ints, let e = inputs[2]?.ints else { return nil }
            starts = s; ends = e
            axesList = inputs.count > 3 ? inputs[3]?.ints : nil
            steps = inputs.count > 4 ? inputs[4]?.ints : nil
        }
        let rank = a.shape.count
        let axes = axesList ?? (0..<Int64(starts.count)).map { $0 }
        guard axes.count == starts.count, ends.count == starts.count, (steps?.count ?? starts.count) == starts.count else { return nil }
        var begin = [Int](repeating: 0, count: rank), step = [Int](repeating: 1, count: rank), outShape = a.shape
        for (k, rawAxis) in axes.enumerated() {
            guard let axis = ShapeMath.axis(Int(rawAxis), rank: rank) else { return nil }
            let dim = Int64(a.shape[axis])
            let st = steps?[k] ?? 1
            guard st != 0 else { return nil }
            var s = starts[k] < 0 ? starts[k] &+ dim : starts[k]
            var e = ends[k] < 0 ? ends[k] &+ dim : ends[k]
            if st > 0 {
                s = min(max(s, 0), dim); e = min(max(e, 0), dim)
            } else {
                s = min(max(s, 0), dim - 1); e = min(max(e, -1), dim - 1)
            }
            begin[axis] = Int(s); step[axis] = Int(st); outShape[axis] = sliceCount(from: s, to: e, step: st)
        }
        let strides = ShapeMath.strides(a.shape)
        let count = outShape.reduce(1, *)
        var flat = [Int](repeating: 0, count: count)
        var coordinate = [Int](repeating: 0, count: rank)
        for i in 0..<count {
            var index = 0
            for axis in 0..<rank { index += (begin[axis] + coordinate[axis] * step[axis]) * strides[axis] }
            flat[i] = index
            var axis = rank - 1
            while axis >= 0 {
                coordinate[axis] += 1
                if coordinate[axis] < outShape[axis] { break }
                coordinate[axis] = 0
                axis -= 1
            }
        }
        return a.take(flat, shape: outShape)
    }

    /// Elements of `start..<end` by `step` (either sign) after clamping; 0 when empty.
    /// Overflow-safe for any Int64 inputs within the clamped ranges.
    static func sliceCount(from start: Int64, to end: Int64, step: Int64) -> Int {
        guard step != 0, step != .min else { return 0 }
        if step > 0 { return end > start ? Int((end - start - 1) / step + 1) : 0 }
        return start > end ? Int((start - end - 1) / -step + 1) : 0
    }

    static func range(_ start: DenseArray, _ limit: DenseArray, _ delta: DenseArray, maxElements: Int) -> DenseArray? {
        if let s = start.ints?.first, let l = limit.ints?.first, let d = delta.ints?.first {
            guard d != 0 else { return nil }
            let count = ((Double(l) - Double(s)) / Double(d)).rounded(.up)
            guard count.isFinite, count <= Double(maxElements) else { return nil }
            let n = max(0, Int(count))
            return start.with(shape: [n], storage: .ints((0..<n).map { s &+ Int64($0) &* d }))
        }
        guard let s = start.floats.first, let l = limit.floats.first, let d = delta.floats.first, d != 0 else { return nil }
        let count = ((l - s) / d).rounded(.up)
        guard count.isFinite, count <= Double(maxElements) else { return nil }
        let n = max(0, Int(count))
        return start.with(shape: [n], storage: .floats((0..<n).map { s + Double($0) * d }))
    }
}
