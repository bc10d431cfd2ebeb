import SQIR
import SQKernels

// Three chains of Llama-style decoders (SmolLM2, Llama, Qwen exports) that the plan runs as
// one step each: RMSNorm, the rotary position embedding of q and k, and the SwiGLU gate.
// Matched by ElementwiseFusion (the patterns) and run by the kernels below.

extension ElementwiseFusion {
    /// Rotary embedding, as `rotate_half` exports:
    ///
    ///     Add(Mul(x, cos), Mul(Concat(Neg(Slice(x, h, d)), Slice(x, 0, h), axis = -1), sin))
    ///
    /// Operands of Add and Mul in either order. When x is `Transpose(r, perm = [0, 2, 1, 3])`
    /// read only by the chain, the transpose is absorbed too (the kernel reads r's layout).
    /// The slices' bounds and the concat axis are checked when the step runs; anything else
    /// runs the nodes' kernels.
    static func rotary(_ root: Node, _ outputs: Set<ObjectIdentifier>) -> (Fusion, [Node])? {
        guard root.isOp("Add"), root.inputs.count == 2 else { return nil }
        for side in 0..<2 {
            guard let directValue = root.input(side), let rotatedValue = root.input(1 - side),
                  let direct = private1(directValue, outputs), direct.isOp("Mul"), direct.inputs.count == 2,
                  let rotated = private1(rotatedValue, outputs), rotated.isOp("Mul"), rotated.inputs.count == 2
            else { continue }
            for (ds, rs) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                guard let x = direct.input(ds), let cos = direct.input(1 - ds),
                      let sin = rotated.input(1 - rs), let catValue = rotated.input(rs),
                      let concat = private1(catValue, outputs), concat.isOp("Concat"), concat.inputs.count == 2,
                      let axis = concat.int("axis"),
                      let negValue = concat.input(0), let neg = private1(negValue, outputs), neg.isOp("Neg"),
                      let highValue = neg.input(0), let high = private1(highValue, outputs), high.isOp("Slice"),
                      let lowValue = concat.input(1), let low = private1(lowValue, outputs), low.isOp("Slice"),
                      high.input(0) === x, low.input(0) === x, high.inputs.count >= 3, low.inputs.count >= 3
                else { continue }
                var inner = [direct, rotated, concat, neg, high, low]
                var source = x
                // The transpose in front, when only the chain reads it.
                if let t = x.producer, t.isOp("Transpose"), t.outputs.count == 1, t.ints("perm") == [0, 2, 1, 3],
                   !outputs.contains(ObjectIdentifier(x)), x.uses.count == 3,
                   x.uses.allSatisfy({ $0.node === direct || $0.node === high || $0.node === low }),
                   let r = t.input(0) {
                    inner.append(t)
                    source = r
                }
                let lowParameters = Array(low.inputs.dropFirst()), highParameters = Array(high.inputs.dropFirst())
                let kernel = RotaryKernel(transposed: source !== x, concatAxis: axis,
                                          lowCount: lowParameters.count, highCount: highParameters.count)
                let inputs = [source, cos, sin] + lowParameters + highParameters
                return (Fusion(kernel: kernel, inputs: inputs, kind: "Rotary embedding (fused)"), inner)
            }
        }
        return nil
    }

    /// RMSNorm as Llama exports it, with or without the scale:
    ///
    ///     Mul(w, Mul(x, Div(1, Sqrt(Add(ReduceMean(Pow(x, 2), axes = [-1]), ε)))))
    ///
    /// (`Reciprocal(Sqrt(…))` for the Div too), every operand order, each intermediate private;
    /// x itself may have other readers (the residual stream). Exponent, axes, ε and the
    /// numerator are checked when the step runs.
    static func rmsNorm(_ root: Node, _ outputs: Set<ObjectIdentifier>) -> (Fusion, [Node])? {
        guard root.isOp("Mul"), root.inputs.count == 2 else { return nil }
        for side in 0..<2 {
            if let w = root.input(side), let normalizedValue = root.input(1 - side),
               let inner = private1(normalizedValue, outputs), inner.isOp("Mul"),
               let (fusion, nodes) = rmsNormChain(inner, weight: w, outputs) {
                return (fusion, nodes + [inner])
            }
        }
        return rmsNormChain(root, weight: nil, outputs)
    }

    /// Mul(x, 1/√(mean(x²) + ε)) at `mul`; the nodes it absorbs besides `mul`.
    private static func rmsNormChain(_ mul: Node, weight: Value?, _ outputs: Set<ObjectIdentifier>) -> (Fusion, [Node])? {
        guard mul.inputs.count == 2 else { return nil }
        for side in 0..<2 {
            guard let x = mul.input(side), let rValue = mul.input(1 - side), let r = private1(rValue, outputs) else { continue }
            let reciprocal = r.isOp("Reciprocal")
            guard reciprocal || (r.isOp("Div") && r.inputs.count == 2),
                  let rootValue = r.input(reciprocal ? 0 : 1), let sqrt = private1(rootValue, outputs), sqrt.isOp("Sqrt"),
                  let sumValue = sqrt.input(0), let add = private1(sumValue, outputs), add.isOp("Add"), add.inputs.count == 2
            else { continue }
            for a in 0..<2 {
                guard let meanValue = add.input(a), let epsilon = add.input(1 - a),
                      let mean = private1(meanValue, outputs), mean.isOp("ReduceMean"),
                      let squareValue = mean.input(0), let pow = private1(squareValue, outputs), pow.isOp("Pow"),
                      pow.inputs.count == 2, pow.input(0) === x, let exponent = pow.input(1),
                      (mean.int("keepdims") ?? 1) == 1, (mean.int("noop_with_empty_axes") ?? 0) == 0
                else { continue }
                let kernel = RMSNormKernel(attributeAxes: mean.ints("axes"), reciprocal: reciprocal,
                                           constantExponent: scalar(exponent))
                let inputs: [Value?] = [x, exponent, mean.input(1), epsilon, reciprocal ? nil : r.input(0), weight]
                return (Fusion(kernel: kernel, inputs: inputs, kind: "RMSNorm (fused)"), [r, sqrt, add, mean, pow])
            }
        }
        return nil
    }

    /// SwiGLU: Mul(Mul(g, Sigmoid(g)), u), every operand order; the SiLU is private.
    static func swiglu(_ root: Node, _ outputs: Set<ObjectIdentifier>) -> (Fusion, [Node])? {
        guard root.isOp("Mul"), root.inputs.count == 2 else { return nil }
        for side in 0..<2 {
            guard let gatedValue = root.input(side), let u = root.input(1 - side),
                  let silu = private1(gatedValue, outputs), silu.isOp("Mul"), silu.inputs.count == 2 else { continue }
            for s in 0..<2 {
                guard let g = silu.input(s), let sValue = silu.input(1 - s),
                      let sigmoid = private1(sValue, outputs), sigmoid.isOp("Sigmoid"), sigmoid.input(0) === g
                else { continue }
                return (Fusion(kernel: SwiGLUKernel(), inputs: [g, u], kind: "SwiGLU (fused)"), [silu, sigmoid])
            }
        }
        return nil
    }
}

/// out = x·cos + rotate_half(x)·sin, rotate_half(x) = [−x[h..<d], x[0..<h]] over the last axis,
/// x = [B, H, S, D] (read from r = [B, S, H, D] when `transposed`). float32 x, cos and sin with
/// cos/sin broadcasting to x over B and H (and S when it is 1): one pass, each element's two
/// products and sum rounded as the Mul, Mul and Add nodes round them, so the nodes' bits.
/// Otherwise (other types, ranks, bounds) the nodes' kernels one after the other.
struct RotaryKernel: OpKernel {
    let transposed: Bool
    let concatAxis: Int
    /// Inputs after [source, cos, sin]: the low half's Slice parameters, then the high half's.
    let lowCount: Int, highCount: Int

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let source = try required(inputs, 0), cos = try required(inputs, 1, "cos"), sin = try required(inputs, 2, "sin")
        let low = Array(inputs[3..<(3 + lowCount)]), high = Array(inputs[(3 + lowCount)..<(3 + lowCount + highCount)])
        if let layout = try fastLayout(source, cos, sin, low, high) {
            return [try fused(source, cos, sin, layout, pool)]
        }
        let x = transposed ? try required(TransposeKernel(perm: [0, 2, 1, 3]).run([source], pool), 0) : source
        let lowHalf = try required(SliceKernel().run([x] + low, pool), 0)
        let highHalf = try required(SliceKernel().run([x] + high, pool), 0)
        let negated = try required(UnaryKernel(op: .neg).run([highHalf], pool), 0)
        let rotated = try required(ConcatKernel(axis: concatAxis).run([negated, lowHalf], pool), 0)
        let sum = try nodeArithmetic(.add, try nodeArithmetic(.multiply, x, cos, pool), try nodeArithmetic(.multiply, rotated, sin, pool), pool)
        return [sum]
    }

    struct Layout { let b: Int, h: Int, s: Int, d: Int, cosStrides: [Int], sinStrides: [Int] }

    /// The fast path's shapes, or nil when the step must run the nodes' kernels.
    private func fastLayout(_ source: Tensor, _ cos: Tensor, _ sin: Tensor, _ low: [Tensor?], _ high: [Tensor?]) throws -> Layout? {
        guard source.dtype == .float, cos.dtype == .float, sin.dtype == .float, source.rank == 4 else { return nil }
        let shape = transposed ? [source.shape[0], source.shape[2], source.shape[1], source.shape[3]] : source.shape
        let (b, h, s, d) = (shape[0], shape[1], shape[2], shape[3])
        guard d > 0, d % 2 == 0, (concatAxis == -1 || concatAxis == 3),
              Self.lastAxisRange(low, d) == 0..<(d / 2), Self.lastAxisRange(high, d) == (d / 2)..<d,
              let cosStrides = Self.broadcastStrides(cos, shape), let sinStrides = Self.broadcastStrides(sin, shape)
        else { return nil }
        return Layout(b: b, h: h, s: s, d: d, cosStrides: cosStrides, sinStrides: sinStrides)
    }

    /// The range a one-axis, step-1 Slice over the last axis (of 4) of size `d` takes; nil otherwise.
    static func lastAxisRange(_ parameters: [Tensor?], _ d: Int) -> Range<Int>? {
        guard parameters.count >= 2, let startsTensor = parameters[0], let endsTensor = parameters[1],
              let starts = try? startsTensor.intValues("starts"), let ends = try? endsTensor.intValues("ends"),
              starts.count == 1, ends.count == 1 else { return nil }
        if parameters.count > 2, let axesTensor = parameters[2] {
            guard let axes = try? axesTensor.intValues("axes"), axes == [3] || axes == [-1] else { return nil }
        } else {
            return nil  // axes default to [0]
        }
        if parameters.count > 3, let stepsTensor = parameters[3] {
            guard let steps = try? stepsTensor.intValues("steps"), steps == [1] else { return nil }
        }
        func clamp(_ v: Int) -> Int { Swift.min(Swift.max(v < 0 ? v &+ d : v, 0), d) }
        let start = clamp(starts[0]), end = clamp(ends[0])
        return start < end ? start..<end : nil
    }

    /// Element strides of `t` over the 4-d `shape` it broadcasts to (0 where it has size 1);
    /// nil unless its last dim is shape's and it broadcasts.
    static func broadcastStrides(_ t: Tensor, _ shape: [Int]) -> [Int]? {
        guard t.rank <= 4, t.shape.last == shape[3] else { return nil }
        let padded = [Int](repeating: 1, count: 4 - t.rank) + t.shape
        let strides = contiguousStrides(padded)
        var result = [Int](repeating: 0, count: 4)
        for k in 0..<4 {
            if padded[k] == shape[k] { result[k] = padded[k] == 1 ? 0 : strides[k] }
            else if padded[k] != 1 { return nil }
        }
        return result
    }

    private func fused(_ source: Tensor, _ cos: Tensor, _ sin: Tensor, _ l: Layout, _ pool: BufferPool) throws -> Tensor {
        let (b, h, s, d) = (l.b, l.h, l.s, l.d)
        let half = d / 2
        return try source.withElements(as: Float.self) { es in
            try cos.withElements(as: Float.self) { ec in
                try sin.withElements(as: Float.self) { en in
                    try pool.make(Float.self, shape: [b, h, s, d]) { out in
                        let x0 = try base(es), c0 = try base(ec), n0 = try base(en), o0 = try base(out)
                        for bi in 0..<b {
                            for hi in 0..<h {
                                for si in 0..<s {
                                    let x = x0 + (transposed ? ((bi * s + si) * h + hi) * d : ((bi * h + hi) * s + si) * d)
                                    let c = c0 + bi * l.cosStrides[0] + hi * l.cosStrides[1] + si * l.cosStrides[2]
                                    let n = n0 + bi * l.sinStrides[0] + hi * l.sinStrides[1] + si * l.sinStrides[2]
                                    let o = o0 + ((bi * h + hi) * s + si) * d
                                    sq_rotary_row_f32(half, x, c, n, o)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// silu(g)·u: the fused SiLU of `FusedActivationKernel` (vmath) and the product, a few
/// thousand elements at a time so the SiLU's output is multiplied while it is in cache.
/// float32 operands of one shape; otherwise the SiLU kernel and the Mul kernel.
struct SwiGLUKernel: OpKernel {
    static let chunk = 4096

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let g = try required(inputs, 0), u = try required(inputs, 1)
        guard g.dtype == .float, u.dtype == .float, g.shape == u.shape else {
            let silu = try required(FusedActivationKernel(op: SQ_VM_SILU).run([g], pool), 0)
            return [try nodeArithmetic(.multiply, silu, u, pool)]
        }
        let out = try g.withElements(as: Float.self) { eg in
            try u.withElements(as: Float.self) { eu in
                try pool.make(Float.self, shape: g.shape) { out in
                    guard eg.count > 0 else { return }
                    let gp = try base(eg), up = try base(eu), op = try base(out)
                    for start in stride(from: 0, to: eg.count, by: Self.chunk) {
                        let n = Swift.min(Self.chunk, eg.count - start)
                        _ = sq_vmath_f32(SQ_VM_SILU, n, gp + start, op + start)
                        sq_mul_inplace_f32(n, op + start, up + start)
                    }
                }
            }
        }
        return [out]
    }
}

/// RMSNorm over the last axis: inputs [x, exponent, axes (input form, or nil), ε, numerator
/// (nil for Reciprocal), w (nil: no scale)]. float32 x, exponent 2, axes the last axis, scalar
/// ε, numerator 1 and w of x's last dim: one pass per row (`sq_rms_norm_row_f32`), the nodes'
/// bits. Otherwise the nodes' kernels one after the other.
struct RMSNormKernel: OpKernel {
    let attributeAxes: [Int]?
    let reciprocal: Bool
    let constantExponent: Double?

    func run(_ inputs: [Tensor?], _ pool: BufferPool) throws -> [Tensor?] {
        let x = try required(inputs, 0), exponent = try required(inputs, 1, "exponent")
        let axesInput = inputs[2], epsilon = try required(inputs, 3, "ε"), numerator = inputs[4], w = inputs[5]
        if x.dtype == .float, x.rank >= 1, let n = x.shape.last, n > 0, isLastAxis(axesInput, rank: x.rank),
           Self.floatScalar(exponent) == 2, let eps = Self.floatScalar(epsilon),
           reciprocal || (numerator.flatMap(Self.floatScalar) == 1),
           w.map({ $0.dtype == .float && $0.count == n && $0.shape.last == n && $0.rank <= x.rank }) ?? true {
            let rows = x.count / n
            let out = try x.withElements(as: Float.self) { ex in
                try pool.make(Float.self, shape: x.shape) { out in
                    let xp = try base(ex), op = try base(out)
                    func rowsWith(_ wp: UnsafePointer<Float>?) {
                        for row in 0..<rows { sq_rms_norm_row_f32(n, xp + row * n, eps, wp, op + row * n) }
                    }
                    if let w { try w.withElements(as: Float.self) { ew in rowsWith(try base(ew)) } } else { rowsWith(nil) }
                }
            }
            return [out]
        }
        let square = try required(PowKernel(constantExponent: constantExponent).run([x, exponent], pool), 0)
        let reduce = ReduceKernel(reduction: .mean, keepDims: true, noopWithEmptyAxes: false, attributeAxes: attributeAxes,
                                  axesFromInput: true)
        let mean = try required(reduce.run(axesInput.map { [square, $0] } ?? [square], pool), 0)
        let root = try required(UnaryKernel(op: .sqrt).run([try nodeArithmetic(.add, mean, epsilon, pool)], pool), 0)
        let r = reciprocal ? try required(UnaryKernel(op: .reciprocal).run([root], pool), 0)
            : try nodeArithmetic(.divide, try required([numerator], 0, "numerator"), root, pool)
        let normalized = try nodeArithmetic(.multiply, x, r, pool)
        return [try w.map { try nodeArithmetic(.multiply, $0, normalized, pool) } ?? normalized]
    }

    private func isLastAxis(_ axesInput: Tensor?, rank: Int) -> Bool {
        guard let axes = axesInput.flatMap({ try? $0.intValues("axes") }) ?? attributeAxes, axes.count == 1 else { return false }
        return axes[0] == -1 || axes[0] == rank - 1
    }

    private static func floatScalar(_ t: Tensor) -> Float? {
        guard t.dtype == .float, t.count == 1 else { return nil }
        return t.elements(as: Float.self)[0]
    }
}

/// A Mul/Add/Div node's kernel on two tensors (float16/bfloat16 computed in float32 and rounded,
/// as the node rounds): the fallbacks above run exactly the nodes they replace.
private func nodeArithmetic(_ op: ArithmeticOp, _ a: Tensor, _ b: Tensor, _ pool: BufferPool) throws -> Tensor {
    try required(ArithmeticKernel(op: op).run([a, b], pool), 0)
}
