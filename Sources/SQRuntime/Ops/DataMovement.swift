import SQIR

/// Transpose, Slice, Expand, Concat, Split, Gather: kernels that move elements without
/// arithmetic, for every dtype.

struct TransposeKernel: OpKernel {
    let perm: [Int]?

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let x = try required(inputs, 0)
        let p = perm ?? Array((0..<x.rank).reversed())
        guard p.count == x.rank, Set(p) == Set(0..<x.rank) else {
            throw OpError("perm \(p) is not a permutation of the \(x.rank) axes")
        }
        let strides = contiguousStrides(x.shape)
        return [try stridedView(x, offset: 0, strides: p.map { strides[$0] }, shape: p.map { x.shape[$0] }, pool)]
    }
}

struct SliceKernel: OpKernel {
    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let x = try required(inputs, 0)
        let starts = try required(inputs, 1, "starts input").intValues("starts")
        let ends = try required(inputs, 2, "ends input").intValues("ends")
        let axes = try (inputs.count > 3 ? inputs[3] : nil)?.intValues("axes") ?? Array(0..<starts.count)
        let steps = try (inputs.count > 4 ? inputs[4] : nil)?.intValues("steps") ?? [Int](repeating: 1, count: starts.count)
        guard ends.count == starts.count, axes.count == starts.count, steps.count == starts.count else {
            throw OpError("starts, ends, axes and steps must have the same length")
        }
        var shape = x.shape
        let base = contiguousStrides(x.shape)
        var strides = base
        var offset = 0
        var seen = Set<Int>()
        for i in 0..<starts.count {
            let a = try normalizedAxis(axes[i], rank: x.rank)
            guard seen.insert(a).inserted else { throw OpError("axis \(a) is sliced twice") }
            let step = steps[i]
            guard step != 0 else { throw OpError("slice step must not be 0") }
            let dim = x.shape[a]
            var s = starts[i] < 0 ? starts[i] &+ dim : starts[i]
            var e = ends[i] < 0 ? ends[i] &+ dim : ends[i]
            if step > 0 {
                s = Swift.min(Swift.max(s, 0), dim)
                e = Swift.min(Swift.max(e, 0), dim)
            } else {
                s = Swift.min(Swift.max(s, 0), dim - 1)
                e = Swift.min(Swift.max(e, -1), dim - 1)
            }
            // Element count without overflow for any step (|e - s| <= dim + 1).
            if step > 0 {
                shape[a] = e > s ? (e - s - 1) / step + 1 : 0
            } else {
                shape[a] = s > e ? (s - e - 1) / (step == Int.min ? Int.max : -step) + 1 : 0
            }
            if shape[a] > 0 { offset += s * base[a] }
            strides[a] = shape[a] > 1 ? base[a] * step : 0
        }
        return [try stridedView(x, offset: offset, strides: strides, shape: shape, pool)]
    }
}

struct ExpandKernel: OpKernel {
    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let x = try required(inputs, 0)
        let target = try required(inputs, 1, "shape input").intValues("the shape")
        guard target.allSatisfy({ $0 >= 0 }) else { throw OpError("negative dim in shape \(target)") }
        let out = try broadcastShape([x.shape, target])
        let padded = [Int](repeating: 1, count: out.count - x.rank) + x.shape
        let strides = zip(contiguousStrides(padded), zip(padded, out)).map { s, d in d.0 == d.1 ? s : 0 }
        return [try stridedView(x, offset: 0, strides: strides, shape: out, pool)]
    }
}

/// Bytes of a tensor viewed as [outer, axisDim * inner] blocks (Concat, Split, Gather).
private func blockLayout(_ shape: [Int], axis: Int, elementSize: Int) -> (outer: Int, rowBytes: Int) {
    let outer = shape[..<axis].reduce(1, *)
    let row = shape[axis...].reduce(1, *) * elementSize
    return (outer, row)
}

struct ConcatKernel: OpKernel {
    let axis: Int

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let parts = inputs.compactMap { $0 }
        guard let first = parts.first else { throw OpError("Concat needs inputs") }
        let a = try normalizedAxis(axis, rank: first.rank)
        var shape = first.shape
        shape[a] = 0
        for p in parts {
            guard p.dtype == first.dtype, p.rank == first.rank else {
                throw OpError("inputs differ in element type or rank (\(first.dtype) \(first.shape) vs \(p.dtype) \(p.shape))")
            }
            for k in 0..<p.rank where k != a && p.shape[k] != first.shape[k] {
                throw OpError("input shapes \(first.shape) and \(p.shape) differ outside axis \(a)")
            }
            shape[a] += p.shape[a]
        }
        guard let size = first.dtype.byteSize else { throw OpError.unsupportedType(first.dtype) }
        let (outer, outRow) = blockLayout(shape, axis: a, elementSize: size)
        return [try pool.make(UInt8.self, dtype: .uint8, shape: [outer * outRow]) { out in
            var column = 0
            for p in parts {
                let (_, row) = blockLayout(p.shape, axis: a, elementSize: size)
                guard row > 0 else { continue }
                let src = try base(p.storage.bytes.bindMemory(to: UInt8.self))
                let dst = try base(out)
                for o in 0..<outer { (dst + o * outRow + column).update(from: src + o * row, count: row) }
                column += row
            }
        }.reinterpreted(as: first.dtype, shape: shape)]
    }
}

struct SplitKernel: OpKernel {
    let axis: Int
    let outputCount: Int
    let attributeSplit: [Int]?
    let numOutputs: Int?

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let x = try required(inputs, 0)
        let a = try normalizedAxis(axis, rank: x.rank)
        let dim = x.shape[a]
        var sizes: [Int]
        if let s = try attributeSplit ?? (inputs.count > 1 ? inputs[1] : nil)?.intValues("split") {
            sizes = s
        } else {
            let n = numOutputs ?? outputCount
            guard n > 0, n == outputCount else { throw OpError("num_outputs \(n) does not match the node's \(outputCount) outputs") }
            let chunk = dim == 0 ? 0 : (dim - 1) / n + 1
            if numOutputs == nil && dim % n != 0 { throw OpError("dim \(dim) does not split evenly into \(n) outputs") }
            sizes = (0..<n).map { Swift.max(0, Swift.min(chunk, dim - $0 * chunk)) }
        }
        var total = 0
        for size in sizes {
            let (sum, overflow) = total.addingReportingOverflow(size)
            guard size >= 0, !overflow else { throw OpError("invalid split sizes \(sizes)") }
            total = sum
        }
        guard sizes.count == outputCount, total == dim else {
            throw OpError("split sizes \(sizes) do not cover dim \(dim) with \(outputCount) outputs")
        }
        guard let size = x.dtype.byteSize else { throw OpError.unsupportedType(x.dtype) }
        let (outer, inRow) = blockLayout(x.shape, axis: a, elementSize: size)
        var results: [Tensor?] = []
        var column = 0
        for n in sizes {
            var shape = x.shape
            shape[a] = n
            let (_, row) = blockLayout(shape, axis: a, elementSize: size)
            let part = try pool.make(UInt8.self, dtype: .uint8, shape: [outer * row]) { out in
                guard row > 0 else { return }
                let src = try base(x.storage.bytes.bindMemory(to: UInt8.self))
                let dst = try base(out)
                for o in 0..<outer { (dst + o * row).update(from: src + o * inRow + column, count: row) }
            }
            results.append(try part.reinterpreted(as: x.dtype, shape: shape))
            column += row
        }
        return results
    }
}

struct GatherKernel: OpKernel {
    let axis: Int

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let data = try required(inputs, 0), indicesTensor = try required(inputs, 1, "indices")
        guard indicesTensor.dtype == .int64 || indicesTensor.dtype == .int32 else {
            throw OpError("indices must be int32 or int64, got \(indicesTensor.dtype)")
        }
        let a = try normalizedAxis(axis, rank: data.rank)
        let dim = data.shape[a]
        let indices = try indicesTensor.intValues("indices")
        var resolved = [Int](repeating: 0, count: indices.count)
        for (i, v) in indices.enumerated() {
            guard v >= -dim && v < dim else { throw OpError("index \(v) is out of range for axis \(a) of shape \(data.shape)") }
            resolved[i] = v < 0 ? v + dim : v
        }
        let shape = Array(data.shape[..<a]) + indicesTensor.shape + Array(data.shape[(a + 1)...])
        guard let size = data.dtype.byteSize else { throw OpError.unsupportedType(data.dtype) }
        let outer = data.shape[..<a].reduce(1, *)
        let block = data.shape[(a + 1)...].reduce(1, *) * size
        let out = try pool.make(UInt8.self, dtype: .uint8, shape: [outer * resolved.count * block]) { out in
            guard block > 0 else { return }
            let src = try base(data.storage.bytes.bindMemory(to: UInt8.self))
            var dst = try base(out)
            for o in 0..<outer {
                let rowBase = src + o * dim * block
                for idx in resolved {
                    dst.update(from: rowBase + idx * block, count: block)
                    dst += block
                }
            }
        }
        return [try out.reinterpreted(as: data.dtype, shape: shape)]
    }
}

extension Tensor {
    /// The same bytes as another dtype and shape (byte counts must agree).
    func reinterpreted(as dtype: DType, shape: [Int]) throws -> Tensor {
        try Tensor(dtype: dtype, shape: shape, storage: storage)
    }
}
