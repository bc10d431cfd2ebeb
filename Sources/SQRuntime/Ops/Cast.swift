import SQIR

/// Cast and CastLike between float32/64, float16, bfloat16, every integer type and bool.
/// Float -> integer rounds toward zero and saturates (NaN -> 0) instead of C's undefined
/// behaviour; integer -> integer wraps; anything -> bool is `!= 0`.
struct CastKernel: OpKernel {
    /// nil for CastLike (the target is input 1's dtype).
    let target: DType?

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let x = try required(inputs, 0)
        let to = try target ?? required(inputs, 1, "target_type input").dtype
        return [try cast(x, to: to, pool)]
    }
}

func cast(_ x: Tensor, to target: DType, _ pool: BufferPool) throws -> Tensor {
    if x.dtype == target { return x }
    guard x.dtype != .string, target != .string else { throw OpError("casts from or to string are not supported") }
    if x.dtype.isHalfPrecision {
        return try cast(try widenedToFloat(x, pool), to: target, pool)
    }
    if target.isHalfPrecision {
        return try narrowedFromFloat(try cast(x, to: .float, pool), to: target, pool)
    }
    if target == .bool {
        return try CastToBool(x: x, pool: pool).dispatch(x.dtype)
    }
    return try CastFrom(x: x, target: target, pool: pool).dispatch(x.dtype)
}

private struct CastToBool: NumericComputation {
    let x: Tensor, pool: BufferPool
    func run<T: RuntimeNumber>(_ type: T.Type) throws -> Tensor {
        try mapUnary(x, T.self, to: UInt8.self, dtype: .bool, pool) { $0 != .zero ? 1 : 0 }
    }
}

private struct CastFrom: NumericComputation {
    let x: Tensor, target: DType, pool: BufferPool
    func run<S: RuntimeNumber>(_ type: S.Type) throws -> Tensor {
        try CastTo<S>(x: x, target: target, pool: pool).dispatch(target)
    }
}

private struct CastTo<S: RuntimeNumber>: NumericComputation {
    let x: Tensor, target: DType, pool: BufferPool
    func run<U: RuntimeNumber>(_ type: U.Type) throws -> Tensor {
        if x.dtype == .bool {
            return try mapUnary(x, UInt8.self, to: U.self, dtype: target, pool) { $0 != 0 ? U.one : U.zero }
        }
        return try mapUnary(x, S.self, to: U.self, dtype: target, pool) { U(scalar: $0.scalarValue) }
    }
}
