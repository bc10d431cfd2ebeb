import SQIR
import SQRuntime

/// A quantized activation operand as its consumer reads it: the DQ output, and the scale
/// to multiply the consumer's product by (onnxruntime target, dynamic scales), if any.
struct QuantizedOperand {
    let value: Value
    let postScale: Value?
}

/// How one activation operand is quantized.
public enum ActivationQuantMode: Hashable, Sendable, CustomStringConvertible {
    /// O3: a constant per-tensor scale from calibration.
    case staticPerTensor(scale: Float)
    /// O2: `Δ = max(ReduceMax(|x|) / 127, tiny)`, one scalar per run.
    case dynamicPerTensor
    /// O1: one scale per slice along `axis` (-1: per token/row of `[…, T, C]`; -2: per
    /// column of a `Kᵀ`-like `[…, C, T]` operand), blocked Q/DQ with `block_size = blockSize`
    /// (the contracted dim, so each block is a whole row or column).
    case dynamicBlocked(axis: Int, blockSize: Int)

    public var description: String {
        switch self {
        case .staticPerTensor(let s): return "static per-tensor (scale \(s))"
        case .dynamicPerTensor: return "dynamic per-tensor"
        case .dynamicBlocked(let axis, let block): return "dynamic per-\(axis == -1 ? "row" : "column") (axis \(axis), block \(block))"
        }
    }
}

/// Builds the standard QDQ encoding into a graph (opset 21 forms, `QDQForms` in SQRuntime: the
/// op names, operand order and attribute names written here are the ones the int8 lowering's
/// patterns match; `QDQFormsRoundTripTests` checks every policy and target):
/// - weights: int8 initializer → `DequantizeLinear(Wq, Δ, 0 [, axis])`;
/// - static activations: `QuantizeLinear(x, Δ, 0) → DequantizeLinear`;
/// - dynamic per-tensor: `Δ = Max(Div(ReduceMax(Abs(x), keepdims=0), 127), tiny)`;
/// - dynamic blocked: `Δ = Max(Div(ReduceMax(Abs(x), axes=[axis], keepdims=1), 127), tiny)`,
///   `QuantizeLinear(x, Δ) {axis, block_size, output_dtype=int8}` → `DequantizeLinear(·, Δ)
///   {axis, block_size}` (a blocked zero point would need Δ's run-time shape, so it is
///   omitted and `output_dtype` selects int8).
/// With `target = .onnxruntime` activations are uint8 with zero point 128 (the same codes
/// shifted by 128, see `QuantTarget`); a dynamic scale Δ (max |x| written as
/// `Max(ReduceMax(x), Neg(ReduceMin(x)))`) quantizes and the pair reads the codes with scale 1:
/// `Q(x, Δ, 128) → DQ(·, 1, 128)` per tensor, `Q(x, Δ, Expand(128, Shape(Δ))) {axis,
/// block_size} → DQ(·, 1, 128)` per token (`QDQForms.quantizedByDelta`), or, for operands
/// that are not all MatMuls with a weight (Gemm, attention) or not float32, the older
/// `Q(Div(x, Δ), 1, 128) → DQ(·, 1, 128)`; `scaleOutput(of:by:)` multiplies the consumer's
/// product by `Δ`.
/// Shared constants (127, tiny, zero point, axes) are created once per builder.
final class QDQBuilder {
    let graph: Graph
    let target: QuantTarget
    private var constants: [String: Value] = [:]
    /// Dequantized weights already built, by weight value and granularity (a weight shared
    /// by several linears is quantized once).
    private var weights: [WeightKey: Value] = [:]

    private struct WeightKey: Hashable {
        let weight: ObjectIdentifier
        let perChannel: Bool
    }

    init(graph: Graph, target: QuantTarget) {
        self.graph = graph
        self.target = target
    }

    private func constant(_ key: String, _ make: () -> Tensor) -> Value {
        if let v = constants[key] { return v }
        let v = graph.addInitializer(make(), name: key)
        constants[key] = v
        return v
    }

    private var zeroPoint: Value { constant("sq_int8_zero_point") { Tensor(scalar: Int8(0)) } }
    /// uint8 zero point of the onnxruntime target's activations (`Int8Codes.uint8ZeroPoint`).
    private var uint8ZeroPoint: Value { constant("sq_uint8_zero_point") { Tensor(scalar: UInt8(Int8Codes.uint8ZeroPoint)) } }
    private func unitScale(_ type: DType) -> Value { floatConstant("sq_unit_scale", 1, type) }
    /// 127 and the smallest scale, in the activation's float type (float32, float16, bfloat16).
    private func maxInt8(_ type: DType) -> Value { floatConstant("sq_127", Int8Codes.maxCode, type) }
    private func minimumScale(_ type: DType) -> Value {
        floatConstant("sq_min_scale", Int8Quantization.minimumScale(for: type), type)
    }
    private func floatConstant(_ key: String, _ value: Float, _ type: DType) -> Value {
        constant(type == .float ? key : key + "_" + type.shortName) { Tensor.floatScalar(value, type) }
    }
    private func axes(_ axis: Int) -> Value {
        constant("sq_axes_\(axis < 0 ? "m\(-axis)" : String(axis))") { Tensor(shape: [1], values: [Int64(axis)]) }
    }

    /// `DequantizeLinear(int8 W, Δ, 0)` for a linear layer's weight; returns the float output.
    /// Call in node order: a weight shared with an earlier linear reuses its DequantizeLinear.
    /// `floatType`: the scale's and the output's type (default: the weight's).
    /// `absMax`: a per-tensor range replacing max |W| (clipped weights).
    func dequantizedWeight(_ layer: LinearLayer, perChannel: Bool, floatType: DType? = nil, absMax: Float? = nil) -> Value {
        let key = WeightKey(weight: ObjectIdentifier(layer.weight), perChannel: perChannel)
        if let existing = weights[key] { return existing }
        let (values, scale) = Int8Quantization.quantizeWeight(layer, perChannel: perChannel, scaleType: floatType, absMax: absMax)
        let base = layer.weight.name
        let q = graph.addInitializer(values, name: base + "_quantized")
        let s = graph.addInitializer(scale, name: base + "_scale")
        let zp: Value
        var attributes: [Attribute] = []
        if perChannel {
            zp = graph.addInitializer(Tensor.zeros(.int8, shape: [layer.outputChannels]), name: base + "_zero_point")
            attributes.append(Attribute(QDQForms.axis, .int(layer.outputChannelAxis)))
        } else {
            zp = zeroPoint
        }
        let dq = graph.makeNode(QDQForms.dequantizeOp, name: layer.node.name + "/weight/" + QDQForms.dequantizeOp,
                                inputs: [q, s, zp], attributes: attributes, before: layer.node)
        guard let out = dq.output(0) else { return layer.weight }
        out.type = TensorType(floatType ?? layer.floatType, shape: layer.weightTensor.shape)
        weights[key] = out
        return out
    }

    /// Inserts `x → Q → DQ` (and the scale computation) before `anchor`; returns the DQ
    /// output, and for the onnxruntime target's dynamic scales the scale the consumer's
    /// product must be multiplied by. `floatType` is x's element type: scales and constants
    /// are written in it. `linearOnly`: every consumer of the operand is a MatMul with a
    /// weight (the onnxruntime target then quantizes with Δ itself, no Div).
    func quantizeDequantize(_ x: Value, mode: ActivationQuantMode, floatType: DType = .float, linearOnly: Bool = false,
                            before anchor: Node) -> QuantizedOperand {
        if target == .onnxruntime {
            return uint8QuantizeDequantize(x, mode: mode, floatType: floatType, byDelta: linearOnly && floatType == .float, before: anchor)
        }
        let scale: Value
        var attributes: [Attribute] = []
        var qInputs: [Value?]
        switch mode {
        case .staticPerTensor(let value):
            scale = staticScale(x, value, floatType)
            qInputs = [x, scale, zeroPoint]
        case .dynamicPerTensor:
            scale = dynamicScale(x, reduceAxis: nil, floatType, before: anchor)
            qInputs = [x, scale, zeroPoint]
        case .dynamicBlocked(let axis, let blockSize):
            scale = dynamicScale(x, reduceAxis: axis, floatType, before: anchor)
            attributes = [Attribute(QDQForms.axis, .int(axis)), Attribute(QDQForms.blockSize, .int(blockSize))]
            qInputs = [x, scale]
        }
        let qAttributes = attributes + (qInputs.count == 2 ? [Attribute(QDQForms.outputDType, .int(Int(DType.int8.rawValue)))] : [])
        return QuantizedOperand(value: pair(x, scale: scale, zeroPoint: qInputs.count == 3 ? zeroPoint : nil, codes: .int8,
                                            qAttributes: qAttributes, dqAttributes: attributes, before: anchor),
                                postScale: nil)
    }

    private func staticScale(_ x: Value, _ value: Float, _ floatType: DType) -> Value {
        let representable = Int8Quantization.representable(value, in: floatType)
        return graph.addInitializer(Tensor.floatScalar(representable, floatType), name: x.name + "_scale")
    }

    /// The onnxruntime target: `Q(x, Δ, 128) → DQ` for a static Δ; for a dynamic one,
    /// `byDelta`: `Q(x, Δ, zp) → DQ(·, 1, 128)` (the codes of x quantized with Δ, read with
    /// scale 1; a blocked Q's zero point is `Expand(128, Shape(Δ))`, Δ's run-time shape), else
    /// `Q(Div(x, Δ), 1, 128) → DQ(·, 1, 128)` (x / Δ / 1 is x / Δ exactly, so the codes are
    /// those of `Q(x, Δ)`); Δ is returned as the post-scale.
    private func uint8QuantizeDequantize(_ x: Value, mode: ActivationQuantMode, floatType: DType, byDelta: Bool,
                                         before anchor: Node) -> QuantizedOperand {
        switch mode {
        case .staticPerTensor(let value):
            let scale = staticScale(x, value, floatType)
            return QuantizedOperand(value: pair(x, scale: scale, zeroPoint: uint8ZeroPoint, codes: .uint8, before: anchor), postScale: nil)
        case .dynamicPerTensor, .dynamicBlocked:
            var reduceAxis: Int?
            if case .dynamicBlocked(let axis, _) = mode { reduceAxis = axis }
            let scale = dynamicScale(x, reduceAxis: reduceAxis, floatType, before: anchor)
            if byDelta {
                var zeroPoint = uint8ZeroPoint
                var attributes: [Attribute] = []
                if case .dynamicBlocked(let axis, let blockSize) = mode {
                    let shape = graph.makeNode(QDQForms.shapeOp, name: x.name + "/zero_point/" + QDQForms.shapeOp, inputs: [scale],
                                               before: anchor)
                    let expand = graph.makeNode(QDQForms.expandOp, name: x.name + "/zero_point/" + QDQForms.expandOp,
                                                inputs: [uint8ZeroPoint, shape.output(0)], before: anchor)
                    guard let expanded = expand.output(0) else { return QuantizedOperand(value: x, postScale: nil) }
                    expanded.type = scale.type.map { TensorType(.uint8, $0.dims) }
                    zeroPoint = expanded
                    attributes = [Attribute(QDQForms.axis, .int(axis)), Attribute(QDQForms.blockSize, .int(blockSize))]
                }
                let q = graph.makeNode(QDQForms.quantizeOp, name: x.name + "/" + QDQForms.quantizeOp, inputs: [x, scale, zeroPoint],
                                       attributes: attributes, before: anchor)
                guard let codes = q.output(0) else { return QuantizedOperand(value: x, postScale: nil) }
                codes.type = x.type.map { TensorType(.uint8, $0.dims) }
                let dq = graph.makeNode(QDQForms.dequantizeOp, name: x.name + "/" + QDQForms.dequantizeOp,
                                        inputs: [codes, unitScale(floatType), uint8ZeroPoint], before: anchor)
                dq.output(0)?.type = x.type
                return QuantizedOperand(value: dq.output(0) ?? x, postScale: scale)
            }
            let divided = graph.makeNode(QDQForms.applyScaleOp, name: x.name + "/scale/Apply", inputs: [x, scale], before: anchor)
            guard let scaled = divided.output(0) else { return QuantizedOperand(value: x, postScale: nil) }
            scaled.type = x.type
            let dq = pair(scaled, scale: unitScale(floatType), zeroPoint: uint8ZeroPoint, codes: .uint8, before: anchor, name: x.name)
            return QuantizedOperand(value: dq, postScale: scale)
        }
    }

    /// `QuantizeLinear → DequantizeLinear` of `x`; returns the DQ output (typed as x).
    private func pair(_ x: Value, scale: Value, zeroPoint: Value?, codes: DType, qAttributes: [Attribute] = [],
                      dqAttributes: [Attribute] = [], before anchor: Node, name: String? = nil) -> Value {
        let base = name ?? x.name
        var inputs: [Value?] = [x, scale]
        if let zeroPoint { inputs.append(zeroPoint) }
        let q = graph.makeNode(QDQForms.quantizeOp, name: base + "/" + QDQForms.quantizeOp, inputs: inputs,
                               attributes: qAttributes, before: anchor)
        let qOut = q.output(0)
        qOut?.type = x.type.map { TensorType(codes, $0.dims) }
        var dqInputs: [Value?] = [qOut, scale]
        if let zeroPoint { dqInputs.append(zeroPoint) }
        let dq = graph.makeNode(QDQForms.dequantizeOp, name: base + "/" + QDQForms.dequantizeOp, inputs: dqInputs,
                                attributes: dqAttributes, before: anchor)
        let out = dq.output(0)
        out?.type = x.type
        return out ?? x
    }

    /// Multiplies `node`'s product by `scale` (the onnxruntime target's dynamic scales):
    /// `y = MatMul(a, b)` becomes `y = Mul(MatMul(a, b), Δ)`; a Gemm's bias is added after
    /// the Mul (`Gemm(a, b) → Mul(Δ) → Add(β·C)`), so it is not scaled. The output value
    /// keeps its name (graph outputs never change name).
    func scaleOutput(of node: Node, by scale: Value) {
        guard let product = node.output(0) else { return }
        var bias: Value?
        if node.isOp("Gemm"), let c = node.input(2) {
            bias = c
            let beta = node.float("beta") ?? 1
            node.removeInput(2)
            node.attributes.removeAll { $0.name == "beta" }
            if beta != 1 {
                let betaValue = graph.addInitializer(Tensor.floatScalar(beta, c.type?.dtype ?? c.constant?.dtype ?? .float),
                                                     name: node.name + "_beta")
                let scaledBias = graph.makeNode("Mul", name: node.name + "/bias/Beta", inputs: [c, betaValue], before: node)
                bias = scaledBias.output(0)
            }
        }
        let unscaled = Value(name: graph.uniqueName(product.name + "_unscaled"), type: product.type)
        node.setOutput(0, unscaled)
        let anchor = graph.nodes.firstIndex { $0 === node }.flatMap { $0 + 1 < graph.nodes.count ? graph.nodes[$0 + 1] : nil }
        let mul = graph.makeNode(QDQForms.postScaleOp, name: node.name + "/ApplyScale", inputs: [unscaled, scale], before: anchor)
        guard let bias else {
            mul.setOutput(0, product)
            return
        }
        mul.output(0)?.type = product.type
        let add = graph.makeNode("Add", name: node.name + "/Bias", inputs: [mul.output(0), bias], before: anchor)
        add.setOutput(0, product)
    }

    /// `Max(Div(ReduceMax(Abs(x) [, axes], keepdims), 127), tiny)` (`QDQForms.dynamicScale()`);
    /// for the onnxruntime target max |x| is `Max(ReduceMax(x), Neg(ReduceMin(x)))`, the same
    /// value without the Abs pass over x.
    private func dynamicScale(_ x: Value, reduceAxis: Int?, _ floatType: DType, before anchor: Node) -> Value {
        let base = x.name
        let keepDims = [Attribute(QDQForms.keepDims, .int(reduceAxis == nil ? 0 : 1))]
        func reduction(_ op: String, _ input: Value?) -> Node {
            var inputs: [Value?] = [input]
            if let reduceAxis { inputs.append(axes(reduceAxis)) }
            return graph.makeNode(op, name: base + "/scale/" + op, inputs: inputs, attributes: keepDims, before: anchor)
        }
        let absMax: Value?
        if target == .onnxruntime {
            let high = reduction(QDQForms.reduceMaxOp, x), low = reduction(QDQForms.reduceMinOp, x)
            let negated = graph.makeNode(QDQForms.negateOp, name: base + "/scale/" + QDQForms.negateOp, inputs: [low.output(0)],
                                         before: anchor)
            absMax = graph.makeNode(QDQForms.clampOp, name: base + "/scale/AbsMax", inputs: [high.output(0), negated.output(0)],
                                    before: anchor).output(0)
        } else {
            let abs = graph.makeNode(QDQForms.absOp, name: base + "/scale/" + QDQForms.absOp, inputs: [x], before: anchor)
            absMax = reduction(QDQForms.reduceMaxOp, abs.output(0)).output(0)
        }
        let div = graph.makeNode(QDQForms.divideOp, name: base + "/scale/" + QDQForms.divideOp,
                                 inputs: [absMax, maxInt8(floatType)], before: anchor)
        let clamp = graph.makeNode(QDQForms.clampOp, name: base + "/scale/" + QDQForms.clampOp,
                                   inputs: [div.output(0), minimumScale(floatType)], before: anchor)
        if reduceAxis == nil { clamp.output(0)?.type = TensorType(floatType, shape: []) }
        return clamp.output(0) ?? x
    }
}
