import SQIR
import SQRuntime

/// The symmetric int8 quantizer SmoothQuant uses: zero point 0, `Δ = absmax / 127`,
/// `q = clamp(roundHalfToEven(x / Δ), -127, 127)`, all in float32 arithmetic
/// (tools/fakequant_reference.py computes the same expressions with numpy float32). The
/// rounding and the two saturation ranges (weights ±127, activations down to −128) are
/// `Int8Codes`' (SQRuntime), which says why.
public enum Int8Quantization {
    /// Smallest scale written into a graph: keeps `x / Δ` finite when a range is 0.
    public static let minimumScale = Float.leastNormalMagnitude

    /// Δ for a range `absMax`: `absMax / 127`, or 1 when the range is 0 or not finite
    /// (an all-zero weight column quantizes to 0 under any scale).
    public static func weightScale(absMax: Float) -> Float {
        guard absMax > 0, absMax.isFinite else { return 1 }
        return Swift.max(absMax / Int8Codes.maxCode, minimumScale)
    }

    /// Δ for a static activation range: `max(absMax / 127, minimumScale)` (the same guard the
    /// in-graph dynamic scales use).
    public static func activationScale(absMax: Float) -> Float {
        guard absMax.isFinite else { return 1 }
        return Swift.max(absMax / Int8Codes.maxCode, minimumScale)
    }

    /// One weight element: round half to even, saturate to `Int8Codes.symmetric` [-127, 127];
    /// NaN quantizes to 0.
    @inline(__always)
    public static func quantize(_ x: Float, scale: Float) -> Int8 {
        let q = Int8Codes.code(x, scale: scale, in: Int8Codes.symmetric)
        return q.isNaN ? 0 : Int8(q)
    }

    /// Smallest scale written into a graph of float type `dtype`: `minimumScale`, or for
    /// float16 (whose range ends at 6e-8) its smallest subnormal 2⁻²⁴.
    public static func minimumScale(for dtype: DType) -> Float {
        dtype == .float16 ? Float(sign: .plus, exponent: -24, significand: 1) : minimumScale
    }

    /// `scale` as the graph will hold it in float type `dtype`: at least `minimumScale(for:)`,
    /// rounded to the type (the identity for float32).
    public static func representable(_ scale: Float, in dtype: DType) -> Float {
        guard dtype == .float16 || dtype == .bfloat16 else { return scale }
        let clamped = Swift.max(scale, minimumScale(for: dtype))
        return Tensor.narrowing([clamped], shape: [], to: dtype).tensor.floatElements()?.first ?? clamped
    }

    /// A linear layer's weight as int8 in its stored layout, with its scale: a scalar
    /// (`perChannel == false`) or one per output channel (shape `[N]`, along
    /// `layer.outputChannelAxis`).
    /// The scale is written in `scaleType` (default: the weight's float type). `absMax`, for a
    /// per-tensor scale, replaces max |W| (a clipped range; values beyond it saturate).
    public static func quantizeWeight(_ layer: LinearLayer, perChannel: Bool, scaleType: DType? = nil,
                                      absMax clippedRange: Float? = nil) -> (values: Tensor, scale: Tensor) {
        let scaleType = scaleType ?? layer.floatType
        let (k, n) = (layer.inputChannels, layer.outputChannels)
        let exact: [Float]
        if perChannel {
            exact = layer.outputChannelAbsMax().map(weightScale)
        } else {
            let absMax = clippedRange ?? layer.outputChannelAbsMax().max() ?? 0
            exact = [weightScale(absMax: absMax)]
        }
        let scales = exact.map { representable($0, in: scaleType) }
        let values = Tensor.make(Int8.self, shape: layer.weightTensor.shape) { out in
            layer.weightTensor.withFloatElements { w in
                for i in 0..<k {
                    for j in 0..<n {
                        let idx = layer.transposed ? j * k + i : i * n + j
                        out[idx] = quantize(w[idx], scale: perChannel ? scales[j] : scales[0])
                    }
                }
            }
        }
        // The scale has the weight's float type (DequantizeLinear's x_scale type is its output
        // type); the values above were quantized with the scales rounded to that type.
        let scale = Tensor.narrowing(scales, shape: perChannel ? [n] : [], to: scaleType).tensor
        return (values, scale)
    }
}
