import SQIR

/// Add, Sub, Mul, Div, Mod, Pow and the variadic Max, Min, Sum, Mean, with ONNX
/// broadcasting, for every numeric dtype (float16/bfloat16 computed in float32).
enum ArithmeticOp: Sendable {
    case add, subtract, multiply, divide, max, min
    case mod(fmod: Bool)
}

struct ArithmeticKernel: OpKernel {
    let op: ArithmeticOp

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        try computingHalfInFloat(inputs, pool) { ins in
            [try arithmetic(op, try required(ins, 0), try required(ins, 1), pool)]
        }
    }
}

func arithmetic(_ op: ArithmeticOp, _ a: Tensor, _ b: Tensor, _ pool: BufferPool) throws -> Tensor {
    guard a.dtype == b.dtype else {
        throw OpError("operands have different element types (\(a.dtype) and \(b.dtype))")
    }
    if case .mod(let fmod) = op, !fmod, a.dtype.isFloatingPoint {
        throw OpError("Mod of floating-point tensors requires fmod=1")
    }
    if let fast = try fastFloatArithmetic(op, a, b, pool) { return fast }
    return try ArithmeticComputation(op: op, a: a, b: b, pool: pool).dispatch(a.dtype)
}

private struct ArithmeticComputation: NumericComputation {
    let op: ArithmeticOp
    let a: Tensor, b: Tensor
    let pool: BufferPool

    func run<T: RuntimeNumber>(_ type: T.Type) throws -> Tensor {
        let d = a.dtype
        switch op {
        case .add: return try mapBinary(a, b, T.self, T.self, to: T.self, dtype: d, pool) { T.add($0, $1) }
        case .subtract: return try mapBinary(a, b, T.self, T.self, to: T.self, dtype: d, pool) { T.subtract($0, $1) }
        case .multiply: return try mapBinary(a, b, T.self, T.self, to: T.self, dtype: d, pool) { T.multiply($0, $1) }
        case .divide: return try mapBinary(a, b, T.self, T.self, to: T.self, dtype: d, pool) { T.divide($0, $1) }
        case .max: return try mapBinary(a, b, T.self, T.self, to: T.self, dtype: d, pool) { T.larger($0, $1) }
        case .min: return try mapBinary(a, b, T.self, T.self, to: T.self, dtype: d, pool) { T.smaller($0, $1) }
        case .mod(let fmod): return try mapBinary(a, b, T.self, T.self, to: T.self, dtype: d, pool) { T.modulo($0, $1, fmod: fmod) }
        }
    }
}

/// Max, Min, Sum (1 or more inputs) and Mean, folded pairwise with broadcasting.
struct VariadicKernel: OpKernel {
    enum Reduction: Sendable { case max, min, sum, mean }
    let reduction: Reduction

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        try computingHalfInFloat(inputs, pool) { ins in
            let operands = ins.compactMap { $0 }
            guard var acc = operands.first else { throw OpError("needs at least one input") }
            let op: ArithmeticOp
            switch reduction {
            case .max: op = .max
            case .min: op = .min
            case .sum, .mean: op = .add
            }
            for next in operands.dropFirst() { acc = try arithmetic(op, acc, next, pool) }
            if reduction == .mean {
                guard acc.dtype.isFloatingPoint else { throw OpError("Mean needs floating-point inputs") }
                let n = try constantLike(acc.dtype, Double(operands.count), pool)
                acc = try arithmetic(.divide, acc, n, pool)
            }
            if operands.count == 1 { acc = try pool.copy(acc) }
            return [acc]
        }
    }
}

/// A scalar tensor of a numeric dtype holding `value`.
func constantLike(_ dtype: DType, _ value: Double, _ pool: BufferPool) throws -> Tensor {
    struct Fill: NumericComputation {
        let value: Double, dtype: DType, pool: BufferPool
        func run<T: RuntimeNumber>(_ type: T.Type) throws -> Tensor {
            try pool.make(T.self, dtype: dtype, shape: []) { $0[0] = T(double: value) }
        }
    }
    return try Fill(value: value, dtype: dtype, pool: pool).dispatch(dtype)
}

/// Pow: the base's type decides the result; exponents of another numeric type are allowed.
/// A constant scalar exponent of 2, 3, 0.5 or 1 takes a multiply/sqrt fast path.
struct PowKernel: OpKernel {
    let constantExponent: Double?

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        try computingHalfInFloat(inputs, pool) { ins in
            let x = try required(ins, 0), y = try required(ins, 1)
            if x.dtype == .float, let e = constantExponent, [1, 2, 3, 0.5].contains(e), y.count == 1 {
                let shape = try broadcastShape([x.shape, y.shape])
                let r: Tensor
                r = try floatPower(x, exponent: e, pool)
                return [r.shape == shape ? r : try r.reshaped(shape)]
            }
            return [try PowComputation(x: x, y: y, pool: pool).dispatch(x.dtype)]
        }
    }
}

private struct PowComputation: NumericComputation {
    let x: Tensor, y: Tensor
    let pool: BufferPool

    func run<T: RuntimeNumber>(_ type: T.Type) throws -> Tensor {
        if x.dtype == y.dtype, let f = T.self as? any RuntimeFloat.Type {
            return try samePrecision(f)
        }
        let exponent = try widenedToDouble(y)
        return try mapBinary(x, exponent, T.self, Double.self, to: T.self, dtype: x.dtype, pool) { base, e in
            T(double: powDouble(base.doubleValue, e))
        }
    }

    private func samePrecision<F: RuntimeFloat>(_ type: F.Type) throws -> Tensor {
        try mapBinary(x, y, F.self, F.self, to: F.self, dtype: x.dtype, pool) { F.power($0, $1) }
    }

    private func widenedToDouble(_ t: Tensor) throws -> Tensor {
        let values = try t.numericValues()
        return try pool.make(Double.self, shape: t.shape) { out in
            for i in 0..<values.count { out[i] = values[i] }
        }
    }
}

/// pow in Double; integer results of integer powers are exact up to 2^53.
func powDouble(_ x: Double, _ y: Double) -> Double { Double.power(x, y) }
