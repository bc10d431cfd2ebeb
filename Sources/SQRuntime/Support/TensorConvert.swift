import SQIR

extension DType {
    /// float16 and bfloat16: stored as 16-bit patterns, computed in float32.
    var isHalfPrecision: Bool { self == .float16 || self == .bfloat16 }
}

@inline(__always) func bfloat16ToFloat(_ bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

/// Float -> bfloat16 bits, round to nearest even (NaN stays NaN).
@inline(__always) func floatToBfloat16(_ f: Float) -> UInt16 {
    if f.isNaN { return 0x7FC0 }
    let bits = f.bitPattern
    let rounding = 0x7FFF + ((bits >> 16) & 1)
    return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
}

/// `tensor` as float32: float16/bfloat16 widened, float returned as is.
func widenedToFloat(_ tensor: Tensor, _ pool: BufferPool) throws -> Tensor {
    switch tensor.dtype {
    case .float:
        return tensor
    case .float16:
        return try tensor.withElements(as: UInt16.self) { src in
            try pool.make(Float.self, shape: tensor.shape) { out in
                for i in 0..<src.count { out[i] = halfToFloat(src[i]) }
            }
        }
    case .bfloat16:
        return try tensor.withElements(as: UInt16.self) { src in
            try pool.make(Float.self, shape: tensor.shape) { out in
                for i in 0..<src.count { out[i] = bfloat16ToFloat(src[i]) }
            }
        }
    default:
        throw OpError("internal: cannot widen \(tensor.dtype) to float")
    }
}

/// A float32 tensor converted to `dtype` (float16 or bfloat16); float returned as is.
func narrowedFromFloat(_ tensor: Tensor, to dtype: DType, _ pool: BufferPool) throws -> Tensor {
    guard tensor.dtype == .float else { throw OpError("internal: narrowing a \(tensor.dtype) tensor") }
    switch dtype {
    case .float:
        return tensor
    case .float16:
        return try tensor.withElements(as: Float.self) { src in
            try pool.make(UInt16.self, dtype: .float16, shape: tensor.shape) { out in
                for i in 0..<src.count { out[i] = floatToHalf(src[i]) }
            }
        }
    case .bfloat16:
        return try tensor.withElements(as: Float.self) { src in
            try pool.make(UInt16.self, dtype: .bfloat16, shape: tensor.shape) { out in
                for i in 0..<src.count { out[i] = floatToBfloat16(src[i]) }
            }
        }
    default:
        throw OpError("internal: cannot narrow float to \(dtype)")
    }
}

/// Runs a float kernel on half-precision inputs: the listed inputs are widened to float32
/// and every float32 result is narrowed back to the half type. Other dtypes pass through.
func computingHalfInFloat(
    _ inputs: [Tensor?], widen indices: [Int]? = nil, _ pool: BufferPool,
    _ body: ([Tensor?]) throws -> [Tensor?]
) throws -> [Tensor?] {
    // Most calls have no half-precision input: check that without building index arrays.
    if indices == nil && !inputs.contains(where: { $0?.dtype.isHalfPrecision == true }) {
        return try body(inputs)
    }
    let which = indices ?? Array(inputs.indices)
    guard let half = which.lazy.compactMap({ $0 < inputs.count ? inputs[$0] : nil }).first(where: { $0.dtype.isHalfPrecision })?.dtype else {
        return try body(inputs)
    }
    var widened = inputs
    for i in which where i < inputs.count {
        if let t = inputs[i], t.dtype.isHalfPrecision { widened[i] = try widenedToFloat(t, pool) }
    }
    return try body(widened).map { out in
        guard let out, out.dtype == .float else { return out }
        return try narrowedFromFloat(out, to: half, pool)
    }
}

extension Tensor {
    /// Integer elements (any integer dtype) as Int, for shape-like inputs.
    func intValues(_ what: String) throws -> [Int] {
        guard let v = int64Values(), dtype != .bool else {
            throw OpError("\(what) must be an integer tensor, got \(dtype)")
        }
        return v.map { Int(truncatingIfNeeded: $0) }
    }

    /// Elements as Double for every numeric dtype (half types included). SQIR's
    /// `doubleValues()` is not used: it reads uint64 as bit patterns.
    func numericValues() throws -> [Double] {
        struct Read: NumericComputation {
            let t: Tensor
            func run<T: RuntimeNumber>(_ type: T.Type) throws -> [Double] {
                t.withElements(as: T.self) { $0.map { $0.doubleValue } }
            }
        }
        switch dtype {
        case .float16: return withElements(as: UInt16.self) { $0.map { Double(halfToFloat($0)) } }
        case .bfloat16: return withElements(as: UInt16.self) { $0.map { Double(bfloat16ToFloat($0)) } }
        default: return try Read(t: self).dispatch(dtype)
        }
    }
}
