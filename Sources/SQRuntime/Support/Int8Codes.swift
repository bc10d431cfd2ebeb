/// sqopt's one rule for turning a float into an int8 code, written once for every Swift
/// quantizer: `quantize`'s weights (`Int8Quantization.quantize`), `smooth{alpha=auto}`'s fake
/// quantization of activations, and the interpreter's QuantizeLinear. The C kernels
/// (`sq_quant_one` in Sources/SQKernels/internal.h) implement the same rule, vectorized.
///
///     q = saturate(roundHalfToEven(x / Δ), lower, 127)
///
/// in float32 arithmetic (tools/fakequant_reference.py computes the same with numpy float32).
///
/// Two ranges, and why:
/// - `symmetric`, [-127, 127]: weights. sqopt writes the weight codes itself and uses
///   SmoothQuant's symmetric quantizer (`Δ = absmax / 127`, zero point 0): −128 is never
///   used, so the grid is symmetric around 0 (`-q` is a code for every code `q`, and a
///   weight and its negation quantize to negated codes). With `Δ = absmax / 127` a weight
///   only reaches the clamp when Δ was rounded down to the model's float16/bfloat16 type.
/// - `full`, [-128, 127]: activations. The written graph quantizes them with ONNX
///   `QuantizeLinear`, whose int8 saturation range is [-128, 127] (and the uint8 form with
///   zero point 128 holds the same codes shifted); the interpreter must give what that op
///   gives. A dynamic scale (O1/O2, `absmax / 127`) keeps every code within ±127 anyway; a
///   static one (O3, calibrated) lets values beyond the calibrated range saturate, down to
///   −128.
/// NaN handling is the caller's (weights: 0; QuantizeLinear: the range's lower bound; the
/// C kernels: the lower bound): `saturated` lets NaN through.
public enum Int8Codes {
    /// The largest code, and the divisor of SmoothQuant's scales (`Δ = absmax / 127`).
    public static let maxCode: Float = 127
    /// Weights (sqopt's own symmetric quantizer): [-127, 127].
    public static let symmetric: ClosedRange<Float> = -127...127
    /// Activations (ONNX QuantizeLinear's int8 range): [-128, 127].
    public static let full: ClosedRange<Float> = -128...127
    /// The kernels' `saturateLow` / `qmin` argument of each range.
    public static let symmetricLowerBound: Int8 = -127
    public static let fullLowerBound: Int8 = -128

    /// The zero point of the uint8 activation form (`quantize{target=onnxruntime}`), written by
    /// QDQBuilder and matched by Int8Lowering: `clamp(round(x/Δ) + 128, 0, 255) - 128 ==
    /// clamp(round(x/Δ), -128, 127)`, the codes of the `full` range shifted by 128.
    public static let uint8ZeroPoint = 128

    /// `x / scale` rounded half to even (not yet saturated; NaN stays NaN).
    @inline(__always)
    public static func rounded(_ x: Float, scale: Float) -> Float {
        (x / scale).rounded(.toNearestOrEven)
    }

    /// `q` clamped to `range` (NaN stays NaN).
    @inline(__always)
    public static func saturated(_ q: Float, to range: ClosedRange<Float>) -> Float {
        Swift.min(Swift.max(q, range.lowerBound), range.upperBound)
    }

    /// The code of `x` under `scale` in `range`, as a float (NaN stays NaN).
    @inline(__always)
    public static func code(_ x: Float, scale: Float, in range: ClosedRange<Float>) -> Float {
        saturated(rounded(x, scale: scale), to: range)
    }
}
