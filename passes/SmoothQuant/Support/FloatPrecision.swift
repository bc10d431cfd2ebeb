import SQIR

/// float16 and bfloat16 models (the exporters' default for LLMs): smoothing and quantization
/// compute in float32 and write constants back in the model's own float type.
///
/// - reading: `floatElements` widens a float16/bfloat16 tensor exactly;
/// - writing: `Tensor.narrowing(_:shape:to:)` rounds to nearest even and clamps finite values
///   beyond the type's range to ±max (float16: 65504) instead of letting them become
///   infinities, and counts the clamped elements so the pass can say so.
extension DType {
    /// float32, float16 or bfloat16: the float types the SmoothQuant passes rewrite.
    public var isSmoothableFloat: Bool { self == .float || self == .float16 || self == .bfloat16 }

    /// Largest finite value of a float type (float32 for other types).
    public var finiteMax: Float {
        switch self {
        case .float16: return 65504
        case .bfloat16: return Float(bitPattern: 0x7F7F_0000)
        default: return .greatestFiniteMagnitude
        }
    }
}

extension Tensor {
    /// The elements of a float32/float16/bfloat16 tensor as float32 (exact); nil otherwise.
    public func floatElements() -> [Float]? {
        switch dtype {
        case .float: return elements(as: Float.self)
        case .float16: return withElements(as: UInt16.self) { $0.map(halfToFloat) }
        case .bfloat16: return withElements(as: UInt16.self) { $0.map { Float(bitPattern: UInt32($0) << 16) } }
        default: return nil
        }
    }

    /// Runs `body` over the elements as float32: float32 storage directly, the half types widened.
    func withFloatElements<R>(_ body: (UnsafeBufferPointer<Float>) -> R) -> R {
        if dtype == .float { return withElements(as: Float.self, body) }
        return (floatElements() ?? []).withUnsafeBufferPointer(body)
    }

    /// `values` as a tensor of `dtype` (float32, float16 or bfloat16), with the number of finite
    /// values that were beyond the type's range and clamped to ±`finiteMax`.
    static func narrowing(_ values: [Float], shape: [Int], to dtype: DType) -> (tensor: Tensor, clamped: Int) {
        guard dtype == .float16 || dtype == .bfloat16 else {
            return (Tensor(shape: shape, values: values), 0)
        }
        let limit = dtype.finiteMax
        var clamped = 0
        let bits = values.map { v -> UInt16 in
            var x = v
            if x.isFinite && Swift.abs(x) > limit {
                clamped += 1
                x = x < 0 ? -limit : limit
            }
            return dtype == .float16 ? floatToHalf(x) : floatToBFloat16(x)
        }
        let tensor = bits.withUnsafeBytes { raw in
            (try? Tensor(dtype: dtype, shape: shape, storage: TensorStorage(copying: raw)))
        }
        return (tensor ?? Tensor(shape: shape, values: values), clamped)
    }

    /// A float scalar of `dtype` (float32, float16 or bfloat16); values beyond the range are
    /// clamped.
    static func floatScalar(_ value: Float, _ dtype: DType) -> Tensor {
        narrowing([value], shape: [], to: dtype).tensor
    }
}

/// float32 → bfloat16 bits: round to nearest even; NaN stays a quiet NaN with its sign and
/// top payload bits.
private func floatToBFloat16(_ f: Float) -> UInt16 {
    let bits = f.bitPattern
    if f.isNaN { return UInt16(bits >> 16) | 0x40 }
    let rounding = UInt32(0x7FFF) + ((bits >> 16) & 1)
    return UInt16((bits &+ rounding) >> 16)
}
