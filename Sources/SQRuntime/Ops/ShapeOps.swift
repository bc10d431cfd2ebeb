import SQIR

/// Ops that only change a tensor's shape or make small int64 tensors: Reshape, Flatten,
/// Squeeze, Unsqueeze, Identity (zero copy), Shape, Size, ConstantOfShape, Range, Constant.

func int64Tensor(_ values: [Int], shape: [Int]? = nil, _ pool: BufferPool) throws -> Tensor {
    try pool.make(Int64.self, shape: shape ?? [values.count]) { out in
        for (i, v) in values.enumerated() { out[i] = Int64(v) }
    }
}

struct ReshapeKernel: OpKernel {
    let allowZero: Bool

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let x = try required(inputs, 0)
        let requested = try required(inputs, 1, "shape input").intValues("the shape")
        return [try x.reshaped(try reshapeTarget(x.shape, requested, allowZero: allowZero))]
    }
}

/// ONNX Reshape's target shape: 0 copies the input dim (unless allowzero), -1 is inferred.
func reshapeTarget(_ input: [Int], _ requested: [Int], allowZero: Bool) throws -> [Int] {
    var out = requested
    var inferred: Int?
    for (i, d) in requested.enumerated() {
        if d == 0 && !allowZero {
            guard i < input.count else { throw OpError("shape \(requested) copies dim \(i), but the input \(input) has rank \(input.count)") }
            out[i] = input[i]
        } else if d == -1 {
            guard inferred == nil else { throw OpError("shape \(requested) has more than one -1") }
            inferred = i
        } else if d < 0 {
            throw OpError("shape \(requested) has a negative dim")
        }
    }
    guard let total = checkedElementCount(input) else { throw OpError("invalid input shape \(input)") }
    if let i = inferred {
        out[i] = 1
        guard let known = checkedElementCount(out), known > 0, total % known == 0 else {
            throw OpError("cannot reshape \(input) to \(requested)")
        }
        out[i] = total / known
    }
    guard checkedElementCount(out) == total else { throw OpError("cannot reshape \(input) (\(total) elements) to \(requested)") }
    return out
}

struct FlattenKernel: OpKernel {
    let axis: Int

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let x = try required(inputs, 0)
        let a = axis < 0 ? axis + x.rank : axis
        guard a >= 0 && a <= x.rank else { throw OpError("axis \(axis) is out of range for rank \(x.rank)") }
        let outer = x.shape[..<a].reduce(1, *)
        return [try x.reshaped([outer, x.shape[a...].reduce(1, *)])]
    }
}

struct SqueezeKernel: OpKernel {
    /// From the attribute (opset < 13); otherwise read from input 1.
    let attributeAxes: [Int]?

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let x = try required(inputs, 0)
        let axes = try attributeAxes ?? (inputs.count > 1 ? inputs[1] : nil)?.intValues("axes")
        guard let axes, !axes.isEmpty else { return [try x.reshaped(x.shape.filter { $0 != 1 })] }
        let drop = Set(try axes.map { try normalizedAxis($0, rank: x.rank) })
        for a in drop where x.shape[a] != 1 {
            throw OpError("cannot squeeze axis \(a) of shape \(x.shape): its size is not 1")
        }
        return [try x.reshaped(x.shape.enumerated().filter { !drop.contains($0.offset) }.map(\.element))]
    }
}

struct UnsqueezeKernel: OpKernel {
    let attributeAxes: [Int]?

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let x = try required(inputs, 0)
        guard let axes = try attributeAxes ?? (inputs.count > 1 ? inputs[1] : nil)?.intValues("axes") else {
            throw OpError("Unsqueeze needs axes")
        }
        let rank = x.rank + axes.count
        let inserted = try axes.map { try normalizedAxis($0, rank: rank) }
        guard Set(inserted).count == inserted.count else { throw OpError("axes \(axes) repeat an axis") }
        var shape: [Int] = []
        var next = x.shape.makeIterator()
        for i in 0..<rank {
            if inserted.contains(i) { shape.append(1) } else if let d = next.next() { shape.append(d) }
        }
        return [try x.reshaped(shape)]
    }
}

struct IdentityKernel: OpKernel {
    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        [try required(inputs, 0)]
    }
}

struct ShapeKernel: OpKernel {
    let start: Int
    let end: Int?

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let shape = try required(inputs, 0).shape
        let r = shape.count
        func clamp(_ i: Int) -> Int { Swift.min(Swift.max(i < 0 ? i + r : i, 0), r) }
        let s = clamp(start), e = clamp(end ?? r)
        return [try int64Tensor(s < e ? Array(shape[s..<e]) : [], pool)]
    }
}

struct SizeKernel: OpKernel {
    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        [try int64Tensor([try required(inputs, 0).count], shape: [], pool)]
    }
}

struct ConstantOfShapeKernel: OpKernel {
    /// One element; float 0 by default.
    let value: Tensor

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let shape = try required(inputs, 0, "shape input").intValues("the shape")
        guard shape.allSatisfy({ $0 >= 0 }) else { throw OpError("negative dim in shape \(shape)") }
        return [try ConstantFill(value: value, shape: shape, pool: pool).dispatch(value.dtype)]
    }
}

private struct ConstantFill: BitPatternComputation {
    let value: Tensor, shape: [Int], pool: BufferPool

    func run<T: FixedWidthInteger & UnsignedInteger & TensorElement>(_ type: T.Type) throws -> Tensor {
        let v = value.storage.bytes.loadUnaligned(as: T.self)
        return try pool.make(T.self, dtype: value.dtype, shape: shape) { out in
            out.update(repeating: v)
        }
    }
}

struct RangeKernel: OpKernel {
    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let start = try required(inputs, 0), limit = try required(inputs, 1), delta = try required(inputs, 2)
        guard start.dtype == limit.dtype, start.dtype == delta.dtype else {
            throw OpError("start, limit and delta must have one element type")
        }
        return try computingHalfInFloat(inputs, pool) { ins in
            let s = try required(ins, 0), l = try required(ins, 1), d = try required(ins, 2)
            return [try RangeComputation(start: s, limit: l, delta: d, pool: pool).dispatch(s.dtype)]
        }
    }
}

private struct RangeComputation: NumericComputation {
    let start: Tensor, limit: Tensor, delta: Tensor, pool: BufferPool

    func run<T: RuntimeNumber>(_ type: T.Type) throws -> Tensor {
        for (t, name) in [(start, "start"), (limit, "limit"), (delta, "delta")] where t.count != 1 {
            throw OpError("\(name) must be a scalar, got shape \(t.shape)")
        }
        let s = start.withElements(as: T.self) { $0[0] }
        let l = limit.withElements(as: T.self) { $0[0] }
        let d = delta.withElements(as: T.self) { $0[0] }
        let span = (l.doubleValue - s.doubleValue) / d.doubleValue
        guard d != .zero, !span.isNaN, span < Double(pool.maxTensorBytes) else {
            throw OpError("Range(\(s), \(l), \(d)) has no finite length")
        }
        let n = span <= 0 ? 0 : Int(span.rounded(.up))
        return try pool.make(T.self, dtype: start.dtype, shape: [n]) { out in
            if T.isFloatingPointType {
                let sd = s.doubleValue, dd = d.doubleValue
                for i in 0..<n { out[i] = T(double: sd + Double(i) * dd) }
            } else {
                var v = s
                for i in 0..<n { out[i] = v; v = T.add(v, d) }
            }
        }
    }
}

/// Constant: the value from whichever `value*` attribute is set.
func constantAttributeValue(_ node: NodeLowering) throws -> Tensor {
    if let t = try node.tensor("value") { return t }
    if let attr = node.node[attribute: "value_float"], let v = attr.float { return Tensor(scalar: v) }
    if let attr = node.node[attribute: "value_floats"], let v = attr.floats { return Tensor(shape: [v.count], values: v) }
    if let attr = node.node[attribute: "value_int"], let v = attr.int { return Tensor(scalar: Int64(v)) }
    if let attr = node.node[attribute: "value_ints"], let v = attr.ints { return Tensor(shape: [v.count], values: v.map(Int64.init)) }
    if node.node[attribute: "value_string"] != nil || node.node[attribute: "value_strings"] != nil {
        throw OpError("string constants are not supported")
    }
    if node.node[attribute: "sparse_value"] != nil { throw OpError("sparse constants are not supported") }
    throw OpError("Constant has no value attribute")
}
