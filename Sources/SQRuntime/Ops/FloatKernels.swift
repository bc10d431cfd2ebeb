import SQIR
import SQKernels

/// Float32 fast paths of the elementwise ops that dominate transformer graphs (Add, Sub,
/// Mul, Div, Max, Min, Exp, Sigmoid, Erf, Tanh, GELU, Sqrt, ...) and of Softmax. Each
/// function is a type, so specialization inlines it into plain or 8-lane loops; the
/// generic paths (any dtype, closures) serve everything else.

/// A float function with a scalar and an 8-lane form, passed as a type so that generic
/// specialization inlines it into the loop (a closure argument would be called per element).
protocol FloatFunction {
    static func scalar(_ x: Float) -> Float
    static func vector(_ x: Float8) -> Float8
}

/// dst[i] = F(src[i]) for `count` floats, 8 at a time (the tail padded).
@inline(__always)
func applyFunction<F: FloatFunction>(_ f: F.Type, _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int) {
    var i = 0
    let raw = UnsafeRawPointer(src), out = UnsafeMutableRawPointer(dst)
    while i + 8 <= count {
        out.storeBytes(of: F.vector(raw.loadUnaligned(fromByteOffset: i * 4, as: Float8.self)), toByteOffset: i * 4, as: Float8.self)
        i += 8
    }
    if i < count {
        var tail = Float8()
        for j in 0..<(count - i) { tail[j] = src[i + j] }
        let r = F.vector(tail)
        for j in 0..<(count - i) { dst[i + j] = r[j] }
    }
}

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

/// The float32 fast path of an arithmetic op (kept in this file with the generic loops it
/// instantiates, so they are specialized even without whole-module optimization).
func fastFloatArithmetic(_ op: ArithmeticOp, _ a: Tensor, _ b: Tensor, _ pool: BufferPool) throws -> Tensor? {
    guard a.dtype == .float, b.dtype == .float else { return nil }
    switch op {
    case .add: return try floatBinary(FloatAdd.self, a, b, pool)
    case .subtract: return try floatBinary(FloatSubtract.self, a, b, pool)
    case .multiply: return try floatBinary(FloatMultiply.self, a, b, pool)
    case .divide: return try floatBinary(FloatDivide.self, a, b, pool)
    case .max: return try floatBinary(FloatMax.self, a, b, pool)
    case .min: return try floatBinary(FloatMin.self, a, b, pool)
    case .mod: return nil
    }
}

/// out = Op(a, b) for float32 tensors with broadcasting.
func floatBinary<Op: FloatBinaryFunction>(_ op: Op.Type, _ a: Tensor, _ b: Tensor, _ pool: BufferPool) throws -> Tensor {
    // Same shapes, or a one-element operand of rank ≤ the other's: one plain loop, without
    // the broadcast plan (its dozen small arrays cost more than a decode step's vectors).
    if a.shape == b.shape || (b.count == 1 && b.rank <= a.rank) || (a.count == 1 && a.rank <= b.rank) {
        let outShape = a.shape == b.shape || (b.count == 1 && b.rank <= a.rank) ? a.shape : b.shape
        return try a.withElements(as: Float.self) { ea in
            try b.withElements(as: Float.self) { eb in
                try pool.make(Float.self, shape: outShape) { out in
                    let pa = try base(ea), pb = try base(eb), po = try base(out)
                    let n = out.count
                    if ea.count == n && eb.count == n {
                        for i in 0..<n { po[i] = Op.apply(pa[i], pb[i]) }
                    } else if eb.count == 1 && ea.count == n {
                        let v = pb[0]
                        for i in 0..<n { po[i] = Op.apply(pa[i], v) }
                    } else {
                        let v = pa[0]
                        for i in 0..<n { po[i] = Op.apply(v, pb[i]) }
                    }
                }
            }
        }
    }
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
enum FloatAbsolute: FloatFunction {
    static func scalar(_ x: Float) -> Float { Swift.abs(x) }
    @inline(__always) static func vector(_ x: Float8) -> Float8 { absolute(x) }
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

/// out = op(x) for a float32 tensor with the C vector kernels (SQKernels vmath.c: AVX-512,
/// AVX2 or libm, by the active ISA).
func vectorMath(_ op: sq_vmath_op, _ x: Tensor, _ pool: BufferPool) throws -> Tensor {
    try x.withElements(as: Float.self) { src in
        try pool.make(Float.self, shape: x.shape) { out in
            guard src.count > 0 else { return }
            _ = sq_vmath_f32(op, src.count, try base(src), try base(out))
        }
    }
}

/// The float32 fast path of a unary op, or nil when the op has none.
func fastFloatUnary(_ op: UnaryOp, _ x: Tensor, _ pool: BufferPool) throws -> Tensor? {
    guard x.dtype == .float else { return nil }
    switch op {
    case .exp: return try vectorMath(SQ_VM_EXP, x, pool)
    case .sigmoid: return try vectorMath(SQ_VM_SIGMOID, x, pool)
    case .erf: return try vectorMath(SQ_VM_ERF, x, pool)
    case .tanh: return try vectorMath(SQ_VM_TANH, x, pool)
    case .gelu(let approximate):
        return approximate ? try floatUnary(FloatGeluTanh.self, x, pool) : try vectorMath(SQ_VM_GELU, x, pool)
    case .sqrt: return try floatUnary(FloatSqrt.self, x, pool)
    case .reciprocal: return try floatUnary(FloatReciprocal.self, x, pool)
    case .neg: return try floatUnary(FloatNegate.self, x, pool)
    case .relu: return try floatUnary(FloatRelu.self, x, pool)
    case .abs: return try floatUnary(FloatAbsolute.self, x, pool)
    default: return nil
    }
}

/// x^e for the exponents with a multiply/sqrt form (2, 3, 0.5; anything else copies).
func floatPower(_ x: Tensor, exponent e: Double, _ pool: BufferPool) throws -> Tensor {
    switch e {
    case 2: return try floatUnary(FloatSquare.self, x, pool)
    case 3: return try floatUnary(FloatCube.self, x, pool)
    case 0.5: return try floatUnary(FloatSqrt.self, x, pool)
    default: return try floatUnary(FloatCopy.self, x, pool)
    }
}

/// Softmax / LogSoftmax of contiguous float32 rows of length n (the common axis = -1).
func floatSoftmaxRows(_ x: Tensor, rows: Int, n: Int, log: Bool, _ pool: BufferPool) throws -> Tensor {
    if !log {
        return try x.withElements(as: Float.self) { src in
            try pool.make(Float.self, shape: x.shape) { out in
                sq_softmax_rows_f32(rows, n, try base(src), try base(out))
            }
        }
    }
    return try x.withElements(as: Float.self) { src in
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

/// Sum, mean, max or min over the trailing `n` elements of each of `rows` contiguous rows
/// (Reduce* over the last axes, e.g. RMSNorm's mean of squares or O1's per-token absmax).
/// Sums use 8 float lanes per row and are added up in double.
func floatReduceRows(_ x: Tensor, rows: Int, n: Int, reduction: Reduction, outShape: [Int], _ pool: BufferPool) throws -> Tensor? {
    guard [.sum, .mean, .max, .min].contains(reduction), n > 0 else { return nil }
    return try x.withElements(as: Float.self) { src in
        try pool.make(Float.self, shape: outShape) { out in
            let s = try base(src)
            for row in 0..<rows {
                let p = s + row * n
                let raw = UnsafeRawPointer(p)
                var i = 0
                switch reduction {
                case .max, .min:
                    var acc = splat(reduction == .max ? -.infinity : .infinity)
                    var nan = false
                    while i + 8 <= n {
                        let v = raw.loadUnaligned(fromByteOffset: i * 4, as: Float8.self)
                        nan = nan || any(v .!= v)
                        acc = reduction == .max ? larger(acc, v) : smaller(acc, v)
                        i += 8
                    }
                    var result = reduction == .max ? acc.max() : acc.min()
                    while i < n {
                        nan = nan || p[i].isNaN
                        result = reduction == .max ? Swift.max(result, p[i]) : Swift.min(result, p[i])
                        i += 1
                    }
                    out[row] = nan ? .nan : result
                default:
                    var acc = Float8()
                    while i + 8 <= n {
                        acc += raw.loadUnaligned(fromByteOffset: i * 4, as: Float8.self)
                        i += 8
                    }
                    var total = 0.0
                    for lane in 0..<8 { total += Double(acc[lane]) }
                    while i < n { total += Double(p[i]); i += 1 }
                    out[row] = Float(reduction == .mean ? total / Double(n) : total)
                }
            }
        }
    }
}
