import SQIR

// Index-driven data movement as exporters write it: GatherND / ScatterND (torch advanced
// indexing and index_put, dynamo's aten.index), GatherElements / ScatterElements
// (torch.gather / scatter), NonZero (boolean-mask indexing). Gathers and plain scatters move
// element bytes, so they work for every element type; scatter reductions compute on the
// element type (float16/bfloat16 in float32). Every index is checked against its dim
// (negative indices count from the end, as in the spec).

/// One index resolved against a dim of length `dim`, or an error naming it.
@inline(__always)
private func resolveIndex(_ v: Int, _ dim: Int, axis: Int, shape: [Int]) throws -> Int {
    guard v >= -dim && v < dim else { throw OpError("index \(v) is out of range for axis \(axis) of shape \(shape)") }
    return v < 0 ? v + dim : v
}

private func indexValues(_ t: Tensor) throws -> [Int] {
    guard t.dtype == .int64 || t.dtype == .int32 else { throw OpError("indices must be int32 or int64, got \(t.dtype)") }
    return try t.intValues("indices")
}

private func elementSize(_ t: Tensor) throws -> Int {
    guard let size = t.dtype.byteSize, t.dtype != .string else { throw OpError.unsupportedType(t.dtype) }
    return size
}

/// The element offsets (in `shape`, row-major) that an ND index tuple set addresses:
/// `indices` is `[..., k]`, every tuple picks the slice `shape[k...]` at its position.
/// With `batchDims` b, the first b dims of `indices` and `shape` agree and each tuple
/// indexes its own batch. Returns the slice offsets and the slice length in elements.
private func sliceOffsets(shape: [Int], indices: Tensor, batchDims: Int) throws -> (offsets: [Int], slice: Int) {
    let q = indices.rank, r = shape.count
    guard q >= 1, let k = indices.shape.last else { throw OpError("indices must have rank >= 1") }
    guard batchDims >= 0, batchDims < Swift.min(q, r) else { throw OpError("batch_dims \(batchDims) must be below the ranks of data (\(r)) and indices (\(q))") }
    guard k >= 1, batchDims + k <= r else { throw OpError("indices' last dim \(k) must be in 1...\(r - batchDims) for data of rank \(r)") }
    guard Array(shape[..<batchDims]) == Array(indices.shape[..<batchDims]) else {
        throw OpError("the first \(batchDims) dims of data \(shape) and indices \(indices.shape) must agree")
    }
    let strides = contiguousStrides(shape)
    let batchStride = batchDims == 0 ? 0 : strides[batchDims - 1]
    let tuplesPerBatch = indices.shape[batchDims..<(q - 1)].reduce(1, *)
    let values = try indexValues(indices)
    let tuples = values.count / k
    var offsets = [Int](repeating: 0, count: tuples)
    for t in 0..<tuples {
        var offset = tuplesPerBatch == 0 ? 0 : (t / tuplesPerBatch) * batchStride
        for j in 0..<k {
            let axis = batchDims + j
            offset += try resolveIndex(values[t * k + j], shape[axis], axis: axis, shape: shape) * strides[axis]
        }
        offsets[t] = offset
    }
    return (offsets, shape[(batchDims + k)...].reduce(1, *))
}

struct GatherNDKernel: OpKernel {
    let batchDims: Int

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let data = try required(inputs, 0), indices = try required(inputs, 1, "indices")
        let (offsets, slice) = try sliceOffsets(shape: data.shape, indices: indices, batchDims: batchDims)
        let k = indices.shape[indices.rank - 1]
        let shape = Array(indices.shape.dropLast()) + Array(data.shape[(batchDims + k)...])
        let size = try elementSize(data)
        let block = slice * size
        let (bytes, overflow) = offsets.count.multipliedReportingOverflow(by: block)
        guard !overflow else { throw OpError("output shape \(shape) is too large") }
        let out = try pool.make(UInt8.self, dtype: .uint8, shape: [bytes]) { out in
            guard block > 0 else { return }
            let src = try base(data.storage.bytes.bindMemory(to: UInt8.self))
            var dst = try base(out)
            for offset in offsets {
                dst.update(from: src + offset * size, count: block)
                dst += block
            }
        }
        return [try out.reinterpreted(as: data.dtype, shape: shape)]
    }
}

/// ScatterND / ScatterElements `reduction`.
enum ScatterReduction: String, Sendable {
    case none, add, mul, max, min
}

/// Writes `updates` into a copy of `data` at element `targets[i]` for update element i
/// (in order: later updates win or accumulate, as the reference implementation does).
private func scatter(data: Tensor, updates: Tensor, targets: [Int], reduction: ScatterReduction, _ pool: BufferPool) throws -> Tensor {
    guard updates.dtype == data.dtype else { throw OpError("updates are \(updates.dtype), data is \(data.dtype)") }
    guard updates.count == targets.count else { throw OpError("updates \(updates.shape) do not match the indexed elements (\(targets.count))") }
    if reduction == .none {
        let size = try elementSize(data)
        let out = try pool.copy(data)
        guard let dst = out.storage.mutableBytes?.baseAddress, size > 0 else { return out }
        let src = try base(updates.storage.bytes.bindMemory(to: UInt8.self))
        for (i, t) in targets.enumerated() {
            (dst + t * size).copyMemory(from: src + i * size, byteCount: size)
        }
        return out
    }
    let result = try computingHalfInFloat([data, updates], pool) { widened in
        guard let d = widened[0], let u = widened[1] else { return [nil] }
        return [try ScatterReduce(data: d, updates: u, targets: targets, reduction: reduction, pool: pool).dispatch(d.dtype)]
    }
    guard let tensor = result.first ?? nil else { throw OpError("internal: scatter produced no tensor") }
    return tensor
}

private struct ScatterReduce: NumericComputation {
    let data: Tensor, updates: Tensor, targets: [Int], reduction: ScatterReduction, pool: BufferPool

    func run<T: RuntimeNumber>(_ type: T.Type) throws -> Tensor {
        try data.withElements(as: T.self) { src in
            try updates.withElements(as: T.self) { upd in
                try pool.make(T.self, dtype: data.dtype, shape: data.shape) { out in
                    for i in 0..<src.count { out[i] = src[i] }
                    for (i, t) in targets.enumerated() {
                        switch reduction {
                        case .none: out[t] = upd[i]
                        case .add: out[t] = T.add(out[t], upd[i])
                        case .mul: out[t] = T.multiply(out[t], upd[i])
                        case .max: out[t] = T.larger(out[t], upd[i])
                        case .min: out[t] = T.smaller(out[t], upd[i])
                        }
                    }
                }
            }
        }
    }
}

struct ScatterNDKernel: OpKernel {
    let reduction: ScatterReduction

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let data = try required(inputs, 0), indices = try required(inputs, 1, "indices"), updates = try required(inputs, 2, "updates")
        let (offsets, slice) = try sliceOffsets(shape: data.shape, indices: indices, batchDims: 0)
        let k = indices.shape[indices.rank - 1]
        let expected = Array(indices.shape.dropLast()) + Array(data.shape[k...])
        guard updates.shape == expected else { throw OpError("updates have shape \(updates.shape), expected \(expected)") }
        var targets: [Int] = []
        targets.reserveCapacity(offsets.count * slice)
        for offset in offsets { for e in 0..<slice { targets.append(offset + e) } }
        return [try scatter(data: data, updates: updates, targets: targets, reduction: reduction, pool)]
    }
}

/// For every position of `indices` (same rank as `shape`), the element of `shape` it names:
/// the position itself with coordinate `axis` replaced by the index there.
private func elementTargets(shape: [Int], indices: Tensor, axis: Int) throws -> [Int] {
    guard indices.rank == shape.count else { throw OpError("indices have rank \(indices.rank), data has rank \(shape.count)") }
    let a = try normalizedAxis(axis, rank: shape.count)
    for (d, (n, limit)) in zip(indices.shape, shape).enumerated() where d != a && n > limit {
        throw OpError("indices dim \(d) is \(n), larger than data's \(limit)")
    }
    let values = try indexValues(indices)
    let strides = contiguousStrides(shape)
    var coordinate = [Int](repeating: 0, count: shape.count)
    var targets = [Int](repeating: 0, count: values.count)
    for i in 0..<values.count {
        var offset = 0
        for d in 0..<shape.count where d != a { offset += coordinate[d] * strides[d] }
        offset += try resolveIndex(values[i], shape[a], axis: a, shape: shape) * strides[a]
        targets[i] = offset
        var d = shape.count - 1
        while d >= 0 {
            coordinate[d] += 1
            if coordinate[d] < indices.shape[d] { break }
            coordinate[d] = 0
            d -= 1
        }
    }
    return targets
}

struct GatherElementsKernel: OpKernel {
    let axis: Int

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let data = try required(inputs, 0), indices = try required(inputs, 1, "indices")
        let targets = try elementTargets(shape: data.shape, indices: indices, axis: axis)
        let size = try elementSize(data)
        let out = try pool.make(UInt8.self, dtype: .uint8, shape: [targets.count * size]) { out in
            guard !targets.isEmpty, size > 0 else { return }
            let src = try base(data.storage.bytes.bindMemory(to: UInt8.self))
            let dst = try base(out)
            for (i, t) in targets.enumerated() { (dst + i * size).update(from: src + t * size, count: size) }
        }
        return [try out.reinterpreted(as: data.dtype, shape: indices.shape)]
    }
}

struct ScatterElementsKernel: OpKernel {
    let axis: Int
    let reduction: ScatterReduction

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let data = try required(inputs, 0), indices = try required(inputs, 1, "indices"), updates = try required(inputs, 2, "updates")
        guard updates.shape == indices.shape else { throw OpError("updates \(updates.shape) and indices \(indices.shape) must have one shape") }
        let targets = try elementTargets(shape: data.shape, indices: indices, axis: axis)
        return [try scatter(data: data, updates: updates, targets: targets, reduction: reduction, pool)]
    }
}

/// NonZero: the coordinates of the non-zero elements, `int64[rank, count]`, row-major order.
struct NonZeroKernel: OpKernel {
    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let x = try required(inputs, 0)
        let values = try x.numericValues()
        let shape = x.rank == 0 ? [1] : x.shape
        let strides = contiguousStrides(shape)
        let hits = values.indices.filter { values[$0] != 0 }
        let out = try pool.make(Int64.self, shape: [shape.count, hits.count]) { out in
            for (j, flat) in hits.enumerated() {
                for d in 0..<shape.count {
                    out[d * hits.count + j] = Int64((flat / strides[d]) % Swift.max(shape[d], 1))
                }
            }
        }
        return [out]
    }
}

/// IsNaN, and IsInf with `detect_negative` / `detect_positive`.
struct FloatClassKernel: OpKernel {
    enum Test: Sendable { case nan, infinity(negative: Bool, positive: Bool) }
    let test: Test

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let x = try required(inputs, 0)
        guard x.dtype.isFloatingPoint else { throw OpError("\(test.opName) needs a floating-point tensor, got \(x.dtype)") }
        let test = self.test
        func classify(_ v: Double) -> UInt8 {
            switch test {
            case .nan: return v.isNaN ? 1 : 0
            case .infinity(let negative, let positive):
                return v.isInfinite && ((v < 0 && negative) || (v > 0 && positive)) ? 1 : 0
            }
        }
        if x.dtype == .float {
            return [try mapUnary(x, Float.self, to: UInt8.self, dtype: .bool, pool) { classify(Double($0)) }]
        }
        let values = try x.numericValues()
        return [try pool.make(UInt8.self, dtype: .bool, shape: x.shape) { out in
            for i in 0..<values.count { out[i] = classify(values[i]) }
        }]
    }
}

extension FloatClassKernel.Test {
    var opName: String {
        switch self {
        case .nan: return "IsNaN"
        case .infinity: return "IsInf"
        }
    }
}

/// Dropout at inference: the output is the input and the mask all true. Training mode
/// (opset >= 12 `training_mode` true with a non-zero ratio) draws random masks, which an
/// inference interpreter does not do: it is refused by name.
struct DropoutKernel: OpKernel {
    let wantsMask: Bool

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let x = try required(inputs, 0)
        if inputs.count > 2, let training = inputs[2], try training.numericValues().first.map({ $0 != 0 }) == true {
            let ratio = try inputs[1].flatMap { try $0.numericValues().first } ?? 0.5
            if ratio != 0 { throw OpError("unsupported: Dropout with training_mode=true and ratio \(ratio) (random masks; inference only)") }
        }
        guard wantsMask else { return [x] }
        let mask = try pool.make(UInt8.self, dtype: .bool, shape: x.shape) { out in
            for i in 0..<out.count { out[i] = 1 }
        }
        return [x, mask]
    }
}
