import SQIR

/// QuantizeLinear, DequantizeLinear (per-tensor, per-axis, opset-21 blocked) and
/// DynamicQuantizeLinear. Quantization is `clamp(round_half_even(x / scale) + zp)`
/// computed in float32 as the ONNX reference does; dequantization `(q - zp) · scale`.

/// Where the scale/zero point of each element lives: x viewed as [outer, dim, inner]
/// around `axis`; the parameter index of (o, d, i) per mode.
struct QuantParameterLayout {
    enum Mode { case perTensor, perAxis, blocked(Int) }
    let mode: Mode
    let outer: Int, dim: Int, inner: Int

    init(x: [Int], parameter: [Int], axis: Int, blockSize: Int) throws {
        let count = parameter.reduce(1, *)
        if x.isEmpty || (count == 1 && blockSize <= 0) {
            mode = .perTensor
            (outer, dim, inner) = (1, x.reduce(1, *), 1)
            return
        }
        let a = try normalizedAxis(axis, rank: x.count)
        outer = x[..<a].reduce(1, *)
        dim = x[a]
        inner = x[(a + 1)...].reduce(1, *)
        if blockSize > 0 {
            var expected = x
            expected[a] = dim == 0 ? 0 : (dim - 1) / blockSize + 1
            guard parameter == expected else {
                throw OpError("blocked scale shape \(parameter) does not match input \(x) with block_size \(blockSize) on axis \(a) (expected \(expected))")
            }
            mode = .blocked(blockSize)
        } else {
            guard parameter.count == 1, count == dim else {
                throw OpError("per-axis scale shape \(parameter) does not match dim \(dim) of axis \(a) of \(x)")
            }
            mode = .perAxis
        }
    }

    /// Calls `body(parameterIndex, elementStart, elementCount)` for runs of elements
    /// sharing one parameter.
    @inline(__always)
    func forEachRun(_ body: (Int, Int, Int) -> Void) {
        switch mode {
        case .perTensor:
            body(0, 0, outer * dim * inner)
        case .perAxis:
            for o in 0..<outer { for d in 0..<dim { body(d, (o * dim + d) * inner, inner) } }
        case .blocked(let size):
            let blocks = dim == 0 ? 0 : (dim - 1) / size + 1
            for o in 0..<outer {
                for d in 0..<dim {
                    for i in 0..<inner { body((o * blocks + d / size) * inner + i, (o * dim + d) * inner + i, 1) }
                }
            }
        }
    }
}

/// Integer output types of QuantizeLinear with their ranges.
func quantizedRange(_ dtype: DType) throws -> (Float, Float) {
    switch dtype {
    case .int8: return (-128, 127)
    case .uint8: return (0, 255)
    case .int16: return (-32768, 32767)
    case .uint16: return (0, 65535)
    default: throw OpError("unsupported quantized type \(dtype)")
    }
}

struct QuantizeLinearKernel: OpKernel {
    let axis: Int, blockSize: Int
    let outputType: DType?

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let x = try widenedToFloatIfHalf(try required(inputs, 0), pool)
        let scale = try widenedToFloatIfHalf(try required(inputs, 1, "scale"), pool)
        let zeroPoint = inputs.count > 2 ? inputs[2] : nil
        guard x.dtype == .float, scale.dtype == .float else { throw OpError("QuantizeLinear needs float input and scale") }
        let target = zeroPoint?.dtype ?? outputType ?? .uint8
        if let zeroPoint, zeroPoint.shape != scale.shape { throw OpError("zero point shape \(zeroPoint.shape) differs from scale shape \(scale.shape)") }
        let layout = try QuantParameterLayout(x: x.shape, parameter: scale.shape, axis: axis, blockSize: blockSize)
        let (qmin, qmax) = try quantizedRange(target)
        let zp = try zeroPoint?.numericValues().map(Float.init) ?? [Float](repeating: 0, count: scale.count)
        return [try QuantizeStore(x: x, scale: scale.elements(as: Float.self), zp: zp, layout: layout,
                                  qmin: qmin, qmax: qmax, target: target, pool: pool).dispatch(target)]
    }
}

private struct QuantizeStore: IntegerComputation {
    let x: Tensor, scale: [Float], zp: [Float], layout: QuantParameterLayout
    let qmin: Float, qmax: Float, target: DType, pool: BufferPool

    func run<Q: RuntimeInteger>(_ type: Q.Type) throws -> Tensor {
        try x.withElements(as: Float.self) { src in
            try pool.make(Q.self, dtype: target, shape: x.shape) { out in
                let s = try base(src), o = try base(out)
                let range = qmin...qmax
                layout.forEachRun { p, start, count in
                    let sc = scale[p], z = zp[p]
                    for i in start..<(start + count) {
                        let q = Int8Codes.rounded(s[i], scale: sc) + z
                        o[i] = Q(q.isNaN ? qmin : Int8Codes.saturated(q, to: range))
                    }
                }
            }
        }
    }
}

func widenedToFloatIfHalf(_ t: Tensor, _ pool: BufferPool) throws -> Tensor {
    t.dtype.isHalfPrecision ? try widenedToFloat(t, pool) : t
}

struct DequantizeLinearKernel: OpKernel {
    let axis: Int, blockSize: Int

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let x = try required(inputs, 0)
        let rawScale = try required(inputs, 1, "scale")
        let scale = try widenedToFloatIfHalf(rawScale, pool)
        let zeroPoint = inputs.count > 2 ? inputs[2] : nil
        guard scale.dtype == .float else { throw OpError("the scale must be float, got \(rawScale.dtype)") }
        if let zeroPoint {
            guard zeroPoint.dtype == x.dtype else { throw OpError("zero point type \(zeroPoint.dtype) differs from input type \(x.dtype)") }
            guard zeroPoint.shape == scale.shape else { throw OpError("zero point shape \(zeroPoint.shape) differs from scale shape \(scale.shape)") }
        }
        let layout = try QuantParameterLayout(x: x.shape, parameter: scale.shape, axis: axis, blockSize: blockSize)
        let zp = try zeroPoint?.numericValues().map(Float.init) ?? [Float](repeating: 0, count: scale.count)
        let y = try DequantizeLoad(x: x, scale: scale.elements(as: Float.self), zp: zp, layout: layout, pool: pool).dispatch(x.dtype)
        return [rawScale.dtype.isHalfPrecision ? try narrowedFromFloat(y, to: rawScale.dtype, pool) : y]
    }
}

private struct DequantizeLoad: IntegerComputation {
    let x: Tensor, scale: [Float], zp: [Float], layout: QuantParameterLayout, pool: BufferPool

    func run<Q: RuntimeInteger>(_ type: Q.Type) throws -> Tensor {
        try x.withElements(as: Q.self) { src in
            try pool.make(Float.self, shape: x.shape) { out in
                let s = try base(src), o = try base(out)
                layout.forEachRun { p, start, count in
                    let sc = scale[p], z = zp[p]
                    for i in start..<(start + count) { o[i] = (Float(s[i]) - z) * sc }
                }
            }
        }
    }
}

/// DynamicQuantizeLinear: uint8, asymmetric, per tensor; outputs y, scale, zero point.
struct DynamicQuantizeLinearKernel: OpKernel {
    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let x = try widenedToFloatIfHalf(try required(inputs, 0), pool)
        guard x.dtype == .float else { throw OpError.unsupportedType(x.dtype) }
        return try x.withElements(as: Float.self) { src in
            var lo: Float = 0, hi: Float = 0
            for v in src where !v.isNaN { lo = Swift.min(lo, v); hi = Swift.max(hi, v) }
            guard lo.isFinite, hi.isFinite else { throw OpError("cannot quantize a tensor holding infinities") }
            let scale = (hi == lo ? 1 : hi - lo) / 255
            let zp = Swift.min(Swift.max(0 - lo / scale, 0), 255).rounded(.toNearestOrEven)
            let y = try pool.make(UInt8.self, shape: x.shape) { out in
                for i in 0..<src.count {
                    let q = (src[i] / scale).rounded(.toNearestOrEven) + zp
                    out[i] = q.isNaN ? 0 : UInt8(Swift.min(Swift.max(q, 0), 255))
                }
            }
            return [y, Tensor(scalar: scale), Tensor(scalar: UInt8(zp))]
        }
    }
}
