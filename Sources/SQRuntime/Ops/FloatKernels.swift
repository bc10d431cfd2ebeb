import SQIR

/// Float32 fast paths of the elementwise ops that dominate transformer graphs (Add, Sub,
/// Mul, Div, Max, Min, Exp, Sigmoid, Erf, Tanh, GELU, Sqrt, ...) and of Softmax. Each
/// function is a type, so specialization inlines it into plain or 8-lane loops; the
/// generic paths (any dtype, closures) serve everything else.

protocol FloatBinaryFunction {
    static func apply(_ a: Float, _ b: Float) -> Float
}

enum FloatAdd: FloatBinaryFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a + b } }
enum FloatSubtract: FloatBinaryFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a - b } }
enum FloatMultiply: FloatBinaryFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a * b } }
enum FloatDivide: FloatBinaryFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a / b } }
enum FloatMax: FloatBinaryFunction {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a.isNaN || b.isNaN ? .nan : (a < b ? b : a) }
}
enum FloatMin: FloatBinaryFunction {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a.isNaN || b.isNaN ? .nan : (b < a ? b : a) }
}

/// out = Op(a, b) for float32 tensors with broadcasting.
func floatBinary<Op: FloatBinaryFunction>(_ op: Op.Type, _ a: Tensor, _ b: Tensor, _ pool: BufferPool) throws -> Tensor {
    let it = try BroadcastIteration([a.shape, b.shape])
    let n = it.inner
    let sa = it.innerStrides[0], sb = it.innerStrides[1]
    return try a.withElements(as: Float.self) { ea in
        try b.withElements(as: Float.self) { eb in
            try pool.make(Float.self, shape: it.outShape) { out in
                let a0 = try base(ea), b0 = try base(eb), o0 = try base(out)
                it.forEachRow { o, offs in
                    let pa = a0 + offs[0], pb = b0 + offs[1], po = o0 + o
                    if sa == 1 && sb == 1 {
                        for i in 0..<n { po[i] = Op.apply(pa[i], pb[i]) }
                    } else if sa == 1 {
                        let v = pb[0]
                        for i in 0..<n { po[i] = Op.apply(pa[i], v) }
                    } else if sb == 1 {
                        let v = pa[0]
                        for i in 0..<n { po[i] = Op.apply(v, pb[i]) }
                    } else {
                        po.update(repeating: Op.apply(pa[0], pb[0]), count: n)
                    }
                }
            }
        }
    }
}

enum FloatExp: FloatFunction {
    static func scalar(_ x: Float) -> Float { Float.exponential(x) }
    @inline(__always) static func vector(_ x: Float8) -> Float8 { vectorExp(x) }
}
enum FloatSigmoid: FloatFunction {
    static func scalar(_ x: Float) -> Float { sigmoid(x) }
    @inline(__always) static func vector(_ x: Float8) -> Float8 { vectorSigmoid(x) }
}
enum FloatErf: FloatFunction {
    static func scalar(_ x: Float) -> Float { Float.errorFunction(x) }
    @inline(__always) static func vector(_ x: Float8) -> Float8 { vectorErf(x) }
}
enum FloatTanh: FloatFunction {
    static func scalar(_ x: Float) -> Float { Float.hyperbolicTangent(x) }
    @inline(__always) static func vector(_ x: Float8) -> Float8 { vectorTanh(x) }
}
/// x·Φ(x) = 0.5·x·(1 + erf(x/√2)).
enum FloatGelu: FloatFunction {
    static func scalar(_ x: Float) -> Float { 0.5 * x * (1 + Float.errorFunction(x * 0.707_106_78)) }
    @inline(__always) static func vector(_ x: Float8) -> Float8 {
        splat(0.5) * x * (splat(1) + vectorErf(x * splat(0.707_106_78)))
    }
}
/// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
enum FloatGeluTanh: FloatFunction {
    static func scalar(_ x: Float) -> Float {
        0.5 * x * (1 + Float.hyperbolicTangent(0.797_884_56 * (x + 0.044_715 * x * x * x)))
    }
    @inline(__always) static func vector(_ x: Float8) -> Float8 {
        splat(0.5) * x * (splat(1) + vectorTanh(splat(0.797_884_56) * (x + splat(0.044_715) * x * x * x)))
    }
}
enum FloatSqrt: FloatFunction {
    static func scalar(_ x: Float) -> Float { x.squareRoot() }
    @inline(__always) static func vector(_ x: Float8) -> Float8 { x.squareRoot() }
}
enum FloatReciprocal: FloatFunction {
    static func scalar(_ x: Float) -> Float { 1 / x }
    @inline(__always) static func vector(_ x: Float8) -> Float8 { splat(1) / x }
}
enum FloatNegate: FloatFunction {
    static func scalar(_ x: Float) -> Float { -x }
    @inline(__always) static func vector(_ x: Float8) -> Float8 { -x }
}
enum FloatRelu: FloatFunction {
    static func scalar(_ x: Float) -> Float { x < 0 ? 0 : x }
    @inline(__always) static func vector(_ x: Float8) -> Float8 {
        var r = x
        r.replace(with: 0, where: x .< 0)
        return r
    }
}
enum FloatSquare: FloatFunction {
    static func scalar(_ x: Float) -> Float { x * x }
    @inline(__always) static func vector(_ x: Float8) -> Float8 { x * x }
}
enum FloatCube: FloatFunction {
    static func scalar(_ x: Float) -> Float { x * x * x }
    @inline(__always) static func vector(_ x: Float8) -> Float8 { x * x * x }
}
enum FloatCopy: FloatFunction {
    static func scalar(_ x: Float) -> Float { x }
    @inline(__always) static func vector(_ x: Float8) -> Float8 { x }
}

/// out = F(x) for a float32 tensor.
func floatUnary<F: FloatFunction>(_ f: F.Type, _ x: Tensor, _ pool: BufferPool) throws -> Tensor {
    try x.withElements(as: Float.self) { src in
        try pool.make(Float.self, shape: x.shape) { out in
            applyFunction(F.self, try base(src), try base(out), src.count)
        }
    }
}

/// The float32 fast path of a unary op, or nil when the op has none.
func fastFloatUnary(_ op: UnaryOp, _ x: Tensor, _ pool: BufferPool) throws -> Tensor? {
    guard x.dtype == .float else { return nil }
    switch op {
    case .exp: return try floatUnary(FloatExp.self, x, pool)
    case .sigmoid: return try floatUnary(FloatSigmoid.self, x, pool)
    case .erf: return try floatUnary(FloatErf.self, x, pool)
    case .tanh: return try floatUnary(FloatTanh.self, x, pool)
    case .gelu(let approximate):
        return approximate ? try floatUnary(FloatGeluTanh.self, x, pool) : try floatUnary(FloatGelu.self, x, pool)
    case .sqrt: return try floatUnary(FloatSqrt.self, x, pool)
    case .reciprocal: return try floatUnary(FloatReciprocal.self, x, pool)
    case .neg: return try floatUnary(FloatNegate.self, x, pool)
    case .relu: return try floatUnary(FloatRelu.self, x, pool)
    default: return nil
    }
}

/// Softmax / LogSoftmax of contiguous float32 rows of length n (the common axis = -1).
func floatSoftmaxRows(_ x: Tensor, rows: Int, n: Int, log: Bool, _ pool: BufferPool) throws -> Tensor {
    try x.withElements(as: Float.self) { src in
        try pool.make(Float.self, shape: x.shape) { out in
            let s = try base(src), o = try base(out)
            for row in 0..<rows {
                let p = s + row * n, q = o + row * n
                var m8 = splat(-.infinity)
                var i = 0
                let raw = UnsafeRawPointer(p)
                while i + 8 <= n {
                    m8 = larger(m8, raw.loadUnaligned(fromByteOffset: i * 4, as: Float8.self))
                    i += 8
                }
                var maxValue = m8.max()
                while i < n { maxValue = Swift.max(maxValue, p[i]); i += 1 }
                if maxValue == -.infinity { maxValue = 0 }
                var sum: Float = 0
                if log {
                    for k in 0..<n { sum += FloatExp.scalar(p[k] - maxValue) }
                    let shift = maxValue + Float.logarithm(sum)
                    for k in 0..<n { q[k] = p[k] - shift }
                    continue
                }
                var sum8 = Float8()
                let qraw = UnsafeMutableRawPointer(q)
                i = 0
                while i + 8 <= n {
                    let e = vectorExp(raw.loadUnaligned(fromByteOffset: i * 4, as: Float8.self) - splat(maxValue))
                    qraw.storeBytes(of: e, toByteOffset: i * 4, as: Float8.self)
                    sum8 += e
                    i += 8
                }
                sum = sum8.sum()
                while i < n { let e = FloatExp.scalar(p[i] - maxValue); q[i] = e; sum += e; i += 1 }
                let r = 1 / sum
                for k in 0..<n { q[k] *= r }
            }
        }
    }
}
