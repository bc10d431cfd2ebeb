import SQIR

/// Elementwise functions of one tensor. Float ops run on float/double (half types in
/// float32); Neg, Abs, Sign and Relu also on integers.
enum UnaryOp: Sendable {
    case sqrt, reciprocal, neg, abs, exp, log, erf, tanh, sigmoid, relu, softplus, softsign
    case floor, ceil, round, sign
    case trig(TrigFunction)
    case gelu(tanhApproximation: Bool)
    case leakyRelu(alpha: Float)
    case hardSigmoid(alpha: Float, beta: Float)
    case hardSwish
    case elu(alpha: Float)
    case selu(alpha: Float, gamma: Float)
    case celu(alpha: Float)
    case mish
    case thresholdedRelu(alpha: Float)

    var acceptsIntegers: Bool {
        switch self {
        case .neg, .abs, .sign, .relu: return true
        default: return false
        }
    }
}

struct UnaryKernel: OpKernel {
    let op: UnaryOp

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        try computingHalfInFloat(inputs, pool) { ins in
            let x = try required(ins, 0)
            if let fast = try fastFloatUnary(op, x, pool) { return [fast] }
            if x.dtype.isFloatingPoint {
                return [try UnaryFloatComputation(op: op, x: x, pool: pool).dispatch(x.dtype)]
            }
            guard op.acceptsIntegers, x.dtype != .bool else { throw OpError.unsupportedType(x.dtype) }
            return [try UnaryIntegerComputation(op: op, x: x, pool: pool).dispatch(x.dtype)]
        }
    }
}

private struct UnaryIntegerComputation: NumericComputation {
    let op: UnaryOp, x: Tensor, pool: BufferPool

    func run<T: RuntimeNumber>(_ type: T.Type) throws -> Tensor {
        let d = x.dtype
        switch op {
        case .neg: return try mapUnary(x, T.self, to: T.self, dtype: d, pool) { T.negate($0) }
        case .abs: return try mapUnary(x, T.self, to: T.self, dtype: d, pool) { T.absolute($0) }
        case .relu: return try mapUnary(x, T.self, to: T.self, dtype: d, pool) { T.larger($0, .zero) }
        case .sign:
            return try mapUnary(x, T.self, to: T.self, dtype: d, pool) { v in
                v > .zero ? T.one : (v < .zero ? T.negate(.one) : .zero)
            }
        default: throw OpError.unsupportedType(d)
        }
    }
}

private struct UnaryFloatComputation: FloatComputation {
    let op: UnaryOp, x: Tensor, pool: BufferPool

    func run<T: RuntimeFloat>(_ type: T.Type) throws -> Tensor {
        let d = x.dtype
        func map(_ f: (T) -> T) throws -> Tensor {
            try mapUnary(x, T.self, to: T.self, dtype: d, pool, f)
        }
        switch op {
        case .sqrt: return try map { $0.squareRoot() }
        case .reciprocal: return try map { 1 / $0 }
        case .neg: return try map { -$0 }
        case .abs: return try map { Swift.abs($0) }
        case .exp: return try map { T.exponential($0) }
        case .log: return try map { T.logarithm($0) }
        case .erf: return try map { T.errorFunction($0) }
        case .tanh: return try map { T.hyperbolicTangent($0) }
        case .sigmoid: return try map { sigmoid($0) }
        case .relu: return try map { $0 < 0 ? 0 : $0 }
        case .softplus: return try map { softplus($0) }
        case .softsign: return try map { $0 / (1 + Swift.abs($0)) }
        case .floor: return try map { $0.rounded(.down) }
        case .ceil: return try map { $0.rounded(.up) }
        case .round: return try map { $0.rounded(.toNearestOrEven) }
        case .sign: return try map { $0 > 0 ? 1 : ($0 < 0 ? -1 : $0) }
        case .trig(let f): return try map { T.trig(f, $0) }
        case .gelu(let approximate):
            if approximate {
                let c = T(0.7978845608028654)  // sqrt(2/pi)
                return try map { v in T(0.5) * v * (1 + T.hyperbolicTangent(c * (v + T(0.044715) * v * v * v))) }
            }
            let invSqrt2 = T(0.7071067811865476)
            return try map { v in T(0.5) * v * (1 + T.errorFunction(v * invSqrt2)) }
        case .leakyRelu(let alpha):
            let a = T(alpha)
            return try map { $0 < 0 ? a * $0 : $0 }
        case .hardSigmoid(let alpha, let beta):
            let a = T(alpha), b = T(beta)
            return try map { Swift.max(0, Swift.min(1, a * $0 + b)) }
        case .hardSwish:
            return try map { v in v * Swift.max(0, Swift.min(1, v / 6 + T(0.5))) }
        case .elu(let alpha):
            let a = T(alpha)
            return try map { $0 < 0 ? a * (T.exponential($0) - 1) : $0 }
        case .selu(let alpha, let gamma):
            let a = T(alpha), g = T(gamma)
            return try map { $0 <= 0 ? g * (a * T.exponential($0) - a) : g * $0 }
        case .celu(let alpha):
            let a = T(alpha)
            return try map { Swift.max(0, $0) + Swift.min(0, a * (T.exponential($0 / a) - 1)) }
        case .mish:
            return try map { $0 * T.hyperbolicTangent(softplus($0)) }
        case .thresholdedRelu(let alpha):
            let a = T(alpha)
            return try map { $0 > a ? $0 : 0 }
        }
    }
}

@inline(__always) func sigmoid<T: RuntimeFloat>(_ v: T) -> T {
    if v >= 0 { return 1 / (1 + T.exponential(-v)) }
    let e = T.exponential(v)
    return e / (1 + e)
}

/// log(1 + exp(x)) without overflow.
@inline(__always) func softplus<T: RuntimeFloat>(_ v: T) -> T {
    v > 0 ? v + T.log1plus(T.exponential(-v)) : T.log1plus(T.exponential(v))
}

/// Clip(x, min?, max?) for numeric types; bounds are optional scalar inputs.
struct ClipKernel: OpKernel {
    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        try computingHalfInFloat(inputs, pool) { ins in
            let x = try required(ins, 0)
            let low = ins.count > 1 ? ins[1] : nil
            let high = ins.count > 2 ? ins[2] : nil
            for bound in [low, high] {
                if let b = bound, b.count != 1 || b.dtype != x.dtype {
                    throw OpError("Clip bounds must be scalars of the input's type, got \(b.dtype) \(b.shape)")
                }
            }
            return [try ClipComputation(x: x, low: low, high: high, pool: pool).dispatch(x.dtype)]
        }
    }
}

private struct ClipComputation: NumericComputation {
    let x: Tensor, low: Tensor?, high: Tensor?, pool: BufferPool

    func run<T: RuntimeNumber>(_ type: T.Type) throws -> Tensor {
        let lo = low?.withElements(as: T.self) { $0[0] } ?? T.lowest
        let hi = high?.withElements(as: T.self) { $0[0] } ?? T.highest
        // numpy semantics: min(max(v, lo), hi), so lo > hi gives hi.
        return try mapUnary(x, T.self, to: T.self, dtype: x.dtype, pool) { v in
            let m = v < lo ? lo : v
            return m > hi ? hi : m
        }
    }
}
