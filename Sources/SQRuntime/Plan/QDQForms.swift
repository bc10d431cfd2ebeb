import SQIR

/// The quantized forms of W8A8 models, each described once: `quantize` writes them
/// (passes/SmoothQuant/Quantization/QDQBuilder.swift, with the op names, operand order and
/// attribute names below) and the int8 lowering matches them back (Int8Lowering.swift, with
/// the patterns below and `PatternMatcher`). `QDQFormsRoundTripTests` checks that what the
/// builder writes for every policy and target is matched by these patterns.
///
///     weight            DequantizeLinear(W_int8, s [, 0]) {axis}                     `weight`
///     static            DequantizeLinear(QuantizeLinear(x, Δ, zp), Δ, zp)            `activation()`
///     dynamic           the same pair, Δ = Max(Div(ReduceMax(Abs(x) [, axes]), 127), tiny)
///                       per tensor (keepdims=0) or per token/column (blocked,
///                       {axis, block_size, output_dtype=int8}, no zero point)        `dynamicScale()`
///                       (onnxruntime target: max |x| as Max(ReduceMax(x), Neg(ReduceMin(x))))
///     onnxruntime       Mul(MatMul(DQ(Q(x, Δ, zp), 1, 128), DQ(W)), Δ), zp = 128 per
///                       tensor or Expand(128, Shape(Δ)) blocked {axis=-1, block_size=K}
///                       (`quantizedByDelta`); the older form (still read, and written for
///                       Gemm, attention and non-float32 operands):
///                       Mul(MatMul(DQ(Q(Div(x, Δ), 1, 128), 1, 128), DQ(W)), Δ)     `scaledProduct`
///
/// zp is int8 0 (or absent with `output_dtype = int8`), or uint8 `Int8Codes.uint8ZeroPoint`
/// (128) on both Q and DQ for `quantize{target=onnxruntime}`. The patterns check what one
/// node can show (op types, operand order, constant dtypes, zero points, `saturate`,
/// `block_size` of weights); what relates several captures (Q's and DQ's scales and
/// attributes, the scale layout against the weight's K) is the lowering's.
///
/// Captures: `x`, `scale`, `zeroPoint`, `dequantizeScale`, `dequantizeZeroPoint`, nodes
/// `quantize`, `dequantize` (activation); `weight`, `weightScale`, `weightZeroPoint`, node
/// `weightDequantize` (weight); `x` and nodes `abs` (or `reduceMin`, `negate`, `absMax`),
/// `reduce`, `div`, `max`, values `axes` (`minAxes`)
/// (when written as an input), `divisor`, `minimum` (dynamic scale); `input`, `delta`, nodes
/// `quantize`, `dequantize`, `product`, and `x` (the older form's Div) or `zeroPointExpand`,
/// `zeroPointShape` (scaled product).
public enum QDQForms {
    // MARK: names the builder writes and the patterns match

    public static let quantizeOp = "QuantizeLinear"
    public static let dequantizeOp = "DequantizeLinear"
    /// The dynamic scale's ops, innermost first: `Max(Div(ReduceMax(Abs(x)), 127), tiny)`.
    public static let absOp = "Abs", reduceMaxOp = "ReduceMax", divideOp = "Div", clampOp = "Max"
    /// The onnxruntime target's max |x|: `Max(ReduceMax(x), Neg(ReduceMin(x)))` (two reads of x
    /// and no Abs pass; the same value, negation being exact).
    public static let reduceMinOp = "ReduceMin", negateOp = "Neg"
    /// The run-time zero point of the onnxruntime target's blocked Q: `Expand(128, Shape(Δ))`.
    public static let expandOp = "Expand", shapeOp = "Shape"
    /// The onnxruntime target's dynamic form: `Div(x, Δ)` before the scale-1 pair and
    /// `Mul(product, Δ)` after the consumer.
    public static let applyScaleOp = "Div", postScaleOp = "Mul"
    /// The consumer the onnxruntime dynamic form is matched around.
    public static let productOp = "MatMul"

    /// Attribute names: Q/DQ `axis`, `block_size`, Q `output_dtype`, `saturate`; ReduceMax
    /// `keepdims`, `axes` (an attribute before opset 18), `noop_with_empty_axes`.
    public static let axis = "axis", blockSize = "block_size", outputDType = "output_dtype", saturate = "saturate"
    public static let keepDims = "keepdims", axes = "axes", noopWithEmptyAxes = "noop_with_empty_axes"

    // MARK: patterns

    /// `DequantizeLinear(W, s [, zp])`: a constant int8 matrix, float32/float16/bfloat16
    /// scales, zero point absent or int8 zeros, not blocked. Per tensor (one scale) or per
    /// channel (`axis`): the lowering checks the scales against its weight layout.
    public static let weight: Pattern = .op(dequantizeOp, [
        .constant("weight") { $0.dtype == .int8 && $0.rank == 2 },
        .constant("weightScale") { $0.dtype == .float || $0.dtype.isHalfPrecision },
        .omittable(.constant("weightZeroPoint", where: { isInt8Zero($0) })),
    ], capture: "weightDequantize").attribute(blockSize, equals: 0, default: 0)

    /// `DequantizeLinear(QuantizeLinear(x, Δ, zp), Δ', zp')` with x and Δ matching `x` and
    /// `scale`: symmetric int8 (zero points int8 0 or absent, Q's codes int8) or its uint8 twin
    /// (zero point 128 on both), `saturate` 1. The lowering checks Δ' is Δ and that the
    /// attributes of Q and DQ agree.
    public static func activation(of x: Pattern = .any("x"), scale: Pattern = .any("scale")) -> Pattern {
        let int8Codes = Pattern.op(quantizeOp, [x, scale, .omittable(.constant("zeroPoint", where: { isInt8Zero($0) }))],
                                   capture: "quantize")
            .where(node: { $0.input(2) != nil || $0.int(outputDType) == Int(DType.int8.rawValue) })
        let uint8Codes = Pattern.op(quantizeOp, [x, scale, .constant("zeroPoint", where: { isUInt8Shift($0) })], capture: "quantize")
        return .oneOf(
            .op(dequantizeOp, [int8Codes.attribute(saturate, equals: 1, default: 1), .any("dequantizeScale"),
                               .omittable(.constant("dequantizeZeroPoint", where: { isInt8Zero($0) }))], capture: "dequantize"),
            .op(dequantizeOp, [uint8Codes.attribute(saturate, equals: 1, default: 1), .any("dequantizeScale"),
                               .constant("dequantizeZeroPoint", where: { isUInt8Shift($0) })], capture: "dequantize"))
    }

    /// `Max(Div(ReduceMax(Abs(x) [, axes]), divisor), minimum)`, divisor and minimum constants:
    /// the dynamic scale (`quantize` writes divisor 127 and the activation type's smallest
    /// scale). ReduceMax's axes is an input from opset 18 (`axes`, captured), an attribute
    /// before, or absent (every axis); the lowering reads it (`reduceAxes(_:)`) and checks the
    /// constants, keepdims and axes for its kernel. max |x| may also be written
    /// `Max(ReduceMax(x [, axes]), Neg(ReduceMin(x [, axes])))` (the onnxruntime target): the
    /// lowering checks that ReduceMin reduces like ReduceMax (`reducesAlike(_:)`).
    public static func dynamicScale(of x: Pattern = .any("x")) -> Pattern {
        let absMax = Pattern.oneOf(
            .op(reduceMaxOp, [.op(absOp, [x], capture: "abs"), .omittable(.any("axes"))], capture: "reduce"),
            .op(clampOp, [
                .op(reduceMaxOp, [x, .omittable(.any("axes"))], capture: "reduce"),
                .op(negateOp, [.op(reduceMinOp, [x, .omittable(.any("minAxes"))], capture: "reduceMin")], capture: "negate"),
            ], capture: "absMax"))
        return .op(clampOp, [
            .op(divideOp, [absMax, .constant("divisor")], capture: "div"),
            .constant("minimum"),
        ], capture: "max")
    }

    /// In a `dynamicScale()` match written with ReduceMin: ReduceMin has ReduceMax's axes
    /// (the same value or equal constants, or the same attribute), keepdims and
    /// noop_with_empty_axes. True for the Abs form.
    public static func reducesAlike(_ match: Match) -> Bool {
        guard let low = match.node("reduceMin") else { return true }
        guard let high = match.node("reduce") else { return false }
        switch (match["axes"], match["minAxes"]) {
        case (nil, nil): break
        case let (a?, b?):
            guard a === b || (a.knownConstant.map { t in b.knownConstant?.isIdentical(to: t) ?? false } ?? false) else { return false }
        default: return false
        }
        return high.ints(axes) == low.ints(axes) && (high.int(keepDims) ?? 1) == (low.int(keepDims) ?? 1)
            && (high.int(noopWithEmptyAxes) ?? 0) == (low.int(noopWithEmptyAxes) ?? 0)
    }

    /// ReduceMax's axes in a `dynamicScale()` match: its constant `axes` input, else its
    /// attribute, else `missing`; nil when the input is not a constant.
    public static func reduceAxes(_ match: Match, default missing: [Int]?) -> [Int]? {
        if let a = match["axes"] { return a.knownConstant?.int64Values().map { $0.map(Int.init) } }
        return match.node("reduce")?.ints(axes) ?? missing
    }

    /// The onnxruntime target's dynamic activation: `DQ(Q(input, Δ, zp), 1, 128)`, the codes of
    /// x quantized with Δ read with scale 1 (the product is multiplied by Δ after the MatMul).
    /// zp is uint8 128, or for a blocked Q (`{axis, block_size}`: the lowering checks them
    /// against the weight's K) `Expand(128, Shape(Δ))` (a blocked zero point has Δ's shape,
    /// known only at run time). Captures `input`, `delta`, nodes `quantize`, `dequantize`,
    /// `zeroPointExpand`, `zeroPointShape`.
    public static let quantizedByDelta: Pattern = {
        let shift = Pattern.constant("zeroPoint", where: { isUInt8Shift($0) })
        let zeroPoint = Pattern.oneOf(shift, .op(expandOp, [shift, .op(shapeOp, [.any("delta")], capture: "zeroPointShape")],
                                                 capture: "zeroPointExpand"))
        let q = Pattern.op(quantizeOp, [.any("input"), .any("delta"), zeroPoint], capture: "quantize")
            .attribute(saturate, equals: 1, default: 1)
        return Pattern.op(dequantizeOp, [q, .scalar(1, "dequantizeScale"), .constant("dequantizeZeroPoint", where: { isUInt8Shift($0) })],
                          capture: "dequantize")
            .attribute(blockSize, equals: 0, default: 0)
    }()

    /// The onnxruntime target's dynamic form, rooted at the Mul (either operand order):
    /// `Mul(MatMul(quantizedByDelta, DQ(W)), Δ)`, or the older
    /// `Mul(MatMul(DQ(Q(Div(input, Δ), 1, 128), 1, 128), DQ(W)), Δ)` (the Div is node `x`);
    /// the product read only by the Mul, and the Mul's Δ the Q's (or the Div's) (captured
    /// `delta`; the MatMul is node `product`).
    public static let scaledProduct: Pattern = .op(postScaleOp, [
        // The older form first: its Q has the constant scale 1, which `quantizedByDelta` would
        // also take (as Δ = 1 of a Q reading the Div) and then fail on the Mul's Δ.
        .op(productOp, [.oneOf(activation(of: .op(applyScaleOp, [.any("input"), .any("delta")], capture: "x"), scale: .scalar(1, "scale")),
                               quantizedByDelta),
                        weight], capture: "product").singleUse,
        .any("delta"),
    ], commutative: true)

    // MARK: constants

    /// A zero point of the symmetric int8 form: int8, every element 0.
    public static func isInt8Zero(_ t: Tensor) -> Bool {
        t.dtype == .int8 && t.int64Values()?.allSatisfy { $0 == 0 } == true
    }

    /// The uint8 form's zero point: one uint8 element, `Int8Codes.uint8ZeroPoint`.
    public static func isUInt8Shift(_ t: Tensor) -> Bool {
        t.dtype == .uint8 && t.count == 1 && t.int64Values() == [Int64(Int8Codes.uint8ZeroPoint)]
    }
}
