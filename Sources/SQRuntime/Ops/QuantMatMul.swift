import SQIR

/// MatMulInteger and QLinearMatMul with MatMul's batch broadcasting: exact int32 sums of
/// (a - a_zp)(b - b_zp), zero points per tensor, per row of A or per column of B.

/// Zero-point-corrected operand as Int32, plus the matrix geometry.
private struct IntegerOperand {
    let values: [Int32]
    let shape: [Int]
}

private func integerOperand(_ t: Tensor, zeroPoint: Tensor?, rowsAxis: Bool, _ what: String) throws -> IntegerOperand {
    guard t.dtype == .int8 || t.dtype == .uint8 else { throw OpError("\(what) must be int8 or uint8, got \(t.dtype)") }
    guard let raw = t.int64Values() else { throw OpError.unsupportedType(t.dtype) }
    guard let zeroPoint else { return IntegerOperand(values: raw.map { Int32($0) }, shape: t.shape) }
    guard zeroPoint.dtype == t.dtype, let zp = zeroPoint.int64Values() else {
        throw OpError("\(what) zero point must have type \(t.dtype), got \(zeroPoint.dtype)")
    }
    if zp.count == 1 { return IntegerOperand(values: raw.map { Int32($0 - zp[0]) }, shape: t.shape) }
    // Per row of A (zp has M entries) or per column of B (N entries).
    let rows = t.rank >= 2 ? t.shape[t.rank - 2] : 1, cols = t.shape.last ?? 1
    guard zp.count == (rowsAxis ? rows : cols) else {
        throw OpError("\(what) zero point has \(zp.count) entries; expected 1 or \(rowsAxis ? rows : cols)")
    }
    var out = [Int32](repeating: 0, count: raw.count)
    for i in 0..<raw.count {
        let z = rowsAxis ? zp[(i / cols) % rows] : zp[i % cols]
        out[i] = Int32(raw[i] - z)
    }
    return IntegerOperand(values: out, shape: t.shape)
}

/// int32 product with broadcasting of batch dims; returns accumulators and output shape.
private func integerMatMul(_ a: IntegerOperand, _ b: IntegerOperand) throws -> (acc: [Int32], shape: [Int], m: Int, n: Int) {
    guard !a.shape.isEmpty, !b.shape.isEmpty else { throw OpError("operands must have rank >= 1") }
    let aShape = a.shape.count == 1 ? [1] + a.shape : a.shape
    let bShape = b.shape.count == 1 ? b.shape + [1] : b.shape
    let m = aShape[aShape.count - 2], k = aShape[aShape.count - 1]
    let kb = bShape[bShape.count - 2], n = bShape[bShape.count - 1]
    guard k == kb else { throw OpError("inner dimensions differ: \(a.shape) x \(b.shape)") }
    let (batch, pairs) = try batchPairs(Array(aShape.dropLast(2)), Array(bShape.dropLast(2)))
    var shape = batch
    if a.shape.count > 1 { shape.append(m) }
    if b.shape.count > 1 { shape.append(n) }
    var acc = [Int32](repeating: 0, count: pairs.count * m * n)
    a.values.withUnsafeBufferPointer { pa in
        b.values.withUnsafeBufferPointer { pb in
            acc.withUnsafeMutableBufferPointer { out in
                for (index, (ia, ib)) in pairs.enumerated() {
                    for i in 0..<m {
                        let row = (index * m + i) * n
                        for kk in 0..<k {
                            let av = pa[(ia * m + i) * k + kk]
                            if av == 0 { continue }
                            let bRow = (ib * k + kk) * n
                            for j in 0..<n { out[row + j] &+= av &* pb[bRow + j] }
                        }
                    }
                }
            }
        }
    }
    return (acc, shape, m, n)
}

struct MatMulIntegerKernel: OpKernel {
    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let a = try integerOperand(try required(inputs, 0), zeroPoint: inputs.count > 2 ? inputs[2] : nil, rowsAxis: true, "A")
        let b = try integerOperand(try required(inputs, 1), zeroPoint: inputs.count > 3 ? inputs[3] : nil, rowsAxis: false, "B")
        let (acc, shape, _, _) = try integerMatMul(a, b)
        return [try pool.make(Int32.self, shape: shape) { out in
            for i in 0..<acc.count { out[i] = acc[i] }
        }]
    }
}

/// Scale values as float32; float16 scales are kept at half precision in the products,
/// like the ONNX reference.
private func scaleValues(_ t: Tensor, _ what: String) throws -> [Float] {
    switch t.dtype {
    case .float: return t.elements(as: Float.self)
    case .float16: return t.withElements(as: UInt16.self) { $0.map(halfToFloat) }
    case .bfloat16: return t.withElements(as: UInt16.self) { $0.map(bfloat16ToFloat) }
    default: throw OpError("\(what) must be a float tensor, got \(t.dtype)")
    }
}

struct QLinearMatMulKernel: OpKernel {
    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let aScaleTensor = try required(inputs, 1, "a_scale")
        let aScale = try scaleValues(aScaleTensor, "a_scale")
        let bScale = try scaleValues(try required(inputs, 4, "b_scale"), "b_scale")
        let yScale = try scaleValues(try required(inputs, 6, "y_scale"), "y_scale")
        let yZeroPoint = try required(inputs, 7, "y_zero_point")
        let a = try integerOperand(try required(inputs, 0), zeroPoint: inputs[2], rowsAxis: true, "A")
        let b = try integerOperand(try required(inputs, 3), zeroPoint: inputs.count > 5 ? inputs[5] : nil, rowsAxis: false, "B")
        guard yScale.count == 1, let yzp = yZeroPoint.int64Values(), yzp.count == 1 else {
            throw OpError("y_scale and y_zero_point must be scalars")
        }
        guard yScale[0].isFinite, yScale[0] != 0, (aScale + bScale).allSatisfy(\.isFinite) else {
            throw OpError("scales must be finite and y_scale non-zero")
        }
        let (acc, shape, m, n) = try integerMatMul(a, b)
        guard aScale.count == 1 || aScale.count == m, bScale.count == 1 || bScale.count == n else {
            throw OpError("a_scale must have 1 or M entries and b_scale 1 or N entries")
        }
        let half = aScaleTensor.dtype == .float16
        func rounded(_ v: Float) -> Float { half ? halfToFloat(floatToHalf(v)) : v }
        let (qmin, qmax) = try quantizedRange(yZeroPoint.dtype)
        let zp = Double(yzp[0])
        let values = (0..<acc.count).map { i -> Double in
            let row = (i / n) % Swift.max(m, 1), col = i % Swift.max(n, 1)
            let multiplier = rounded(rounded(aScale[aScale.count == 1 ? 0 : row] * bScale[bScale.count == 1 ? 0 : col]) / yScale[0])
            let q = (Double(acc[i]) * Double(multiplier) + zp).rounded(.toNearestOrEven)
            return q.isNaN ? Double(qmin) : Swift.min(Swift.max(q, Double(qmin)), Double(qmax))
        }
        let out = try int64Tensor(values.map { Int($0) }, shape: shape, pool)
        return [try cast(out, to: yZeroPoint.dtype, pool)]
    }
}
