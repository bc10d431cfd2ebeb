import SQIR
@testable import SQRuntime
import Testing

/// Plan-level elementwise fusions (Plan/ElementwiseFusion.swift) against the same graph run
/// node by node (`fuseElementwise: false`).
@Suite struct ElementwiseFusionTests {
    static func values(_ count: Int, seed: Int, scale: Float = 4) -> [Float] {
        (0..<count).map { i in scale * Float((i * 7919 + seed * 104_729) % 2001 - 1000) / 1000 }
    }

    /// Runs `g` fused and unfused; returns the worst absolute difference, whether the results
    /// are bit-identical, and the step kinds of the fused plan.
    static func compare(_ g: TestGraph, _ inputs: [String: Tensor]) throws -> (error: Float, identical: Bool, kinds: [String], reference: Int) {
        let fused = try g.plan(opset: 17)
        let plain = try g.plan(opset: 17, options: PlanOptions(fuseElementwise: false))
        let a = try fused.run(inputs: inputs), b = try plain.run(inputs: inputs)
        var worst: Float = 0, identical = true
        for (name, want) in b {
            let got = try #require(a[name])
            #expect(got.shape == want.shape)
            let x = got.elements(as: Float.self), y = want.elements(as: Float.self)
            for i in 0..<y.count {
                worst = max(worst, abs(x[i] - y[i]))
                identical = identical && x[i].bitPattern == y[i].bitPattern
            }
        }
        return (worst, identical, fused.stepInfos.map { $0.kind }, plain.stepCount)
    }

    @Test func bertGeluBecomesOneKernel() throws {
        let g = TestGraph()
        let x = g.input("x", .float, [.known(3), .known(37)])
        let div = g.op("Div", [x, g.constant("sqrt2", Tensor(scalar: Float(2).squareRoot()))], name: "act/Div")
        let erf = g.op("Erf", [div], name: "act/Erf")
        let add = g.op("Add", [g.constant("one", Tensor(scalar: Float(1))), erf], name: "act/Add")
        let mul = g.op("Mul", [x, add], name: "act/Mul")
        g.output(g.op("Mul", [g.constant("half", Tensor(scalar: Float(0.5))), mul], name: "act/Mul_1"))
        let (error, _, kinds, reference) = try Self.compare(g, ["x": floats([3, 37], Self.values(111, seed: 1))])
        #expect(kinds == ["Gelu (fused)"], "\(kinds)")
        #expect(reference == 5)
        #expect(error < 2e-6, "\(error)")
    }

    @Test func siluBecomesOneKernel() throws {
        let g = TestGraph()
        let x = g.input("x", .float, [.known(2), .known(19)])
        g.output(g.op("Mul", [g.op("Sigmoid", [x], name: "act/Sigmoid"), x], name: "act/Mul"))
        let (error, _, kinds, _) = try Self.compare(g, ["x": floats([2, 19], Self.values(38, seed: 2, scale: 20))])
        #expect(kinds == ["SiLU (fused)"], "\(kinds)")
        #expect(error < 1e-5, "\(error)")
    }

    @Test(arguments: [[1, 1, 5, 5], [2, 1, 1, 5], [5], [2, 3, 5, 5]])
    func scaledMaskedSoftmaxGivesTheSameBits(maskShape: [Int]) throws {
        let g = TestGraph()
        let s = g.input("s", .float, [.known(2), .known(3), .known(5), .known(5)])
        let mask = g.input("mask", .float, maskShape.map { .known($0) })
        let div = g.op("Div", [s, g.constant("c", Tensor(scalar: Float(8).squareRoot()))], name: "attn/Div")
        let add = g.op("Add", [div, mask], name: "attn/Add")
        g.output(g.op("Softmax", [add], name: "attn/Softmax", attributes: [Attribute("axis", .int(-1))]))
        var maskValues = Self.values(maskShape.reduce(1, *), seed: 3)
        maskValues[0] = -.infinity  // a masked position
        let inputs = ["s": floats([2, 3, 5, 5], Self.values(150, seed: 4, scale: 30)), "mask": floats(maskShape, maskValues)]
        let (_, identical, kinds, reference) = try Self.compare(g, inputs)
        #expect(kinds == ["Softmax (scaled, masked)"], "\(kinds)")
        #expect(reference == 3)
        #expect(identical)
    }

    @Test func maskOfAnotherLayoutFallsBackToTheNodes() throws {
        // A mask whose last dim is 1 broadcasts along the row: the kernel runs Div, Add and
        // Softmax one after the other, with the same result.
        let g = TestGraph()
        let s = g.input("s", .float, [.known(2), .known(4)])
        let mask = g.input("mask", .float, [.known(2), .known(1)])
        let add = g.op("Add", [g.op("Div", [s, g.constant("c", Tensor(scalar: Float(2)))], name: "Div"), mask], name: "Add")
        g.output(g.op("Softmax", [add], name: "Softmax"))
        let (_, identical, kinds, _) = try Self.compare(g, ["s": floats([2, 4], Self.values(8, seed: 5)), "mask": floats([2, 1], [0.5, -1])])
        #expect(kinds == ["Softmax (scaled, masked)"])
        #expect(identical)
    }

    /// The causal mask of exporters: 0 on and below the diagonal, float32's minimum above; with
    /// `padding` trailing columns masked for every row, and `fullyMasked` rows masked everywhere
    /// (their softmax is uniform, not zero past any column).
    /// MatMul(Softmax(Add(Div(MatMul(q, kᵀ), √d), mask)), v), as exporters write attention.
    static func attention(_ g: TestGraph, _ q: Value, _ kt: Value, _ mask: Value, _ v: Value, d: Int) -> Value {
        let scores = g.op("MatMul", [q, kt], name: "attn/MatMul")
        let div = g.op("Div", [scores, g.constant("c", Tensor(scalar: Float(d).squareRoot()))], name: "attn/Div")
        let p = g.op("Softmax", [g.op("Add", [div, mask], name: "attn/Add")], name: "attn/Softmax", attributes: [Attribute("axis", .int(-1))])
        return g.op("MatMul", [p, v], name: "attn/MatMul_1")
    }

    static func causalMask(t: Int, s: Int, padding: Int = 0, fullyMasked: Set<Int> = []) -> [Float] {
        var mask = [Float](repeating: 0, count: t * s)
        for i in 0..<t {
            for j in 0..<s where j > i + (s - t) || j >= s - padding || fullyMasked.contains(i) {
                mask[i * s + j] = -Float.greatestFiniteMagnitude
            }
        }
        return mask
    }

    /// MatMul(Softmax(Add(Div(MatMul(q, kᵀ), c), mask)), v) is one step that skips the
    /// masked-out columns; against the nodes run one by one: the same values (the skipped
    /// scores are exact zeros; the softmax sums may associate differently in the last bit).
    /// Sequence lengths across the 32-column panels, a mask over the batch, padding, a fully
    /// masked row and, as a control, a mask with nothing masked.
    @Test(arguments: [(37, 37, [1, 1, 37, 37], 0, false, false), (70, 70, [2, 1, 70, 70], 5, true, true),
                      (5, 69, [1, 1, 5, 69], 0, false, true), (16, 16, [16], 0, false, false)])
    func maskedAttentionSkipsTheMaskedColumns(t: Int, s: Int, maskShape: [Int], padding: Int, fullRow: Bool, transposed: Bool) throws {
        let g = TestGraph()
        let (b, h, d) = (2, 3, 8)
        let q = g.input("q", .float, [b, h, t, d].map { .known($0) })
        let kt = g.input("kt", .float, [b, h, d, s].map { .known($0) })
        let v = g.input("v", .float, [b, h, s, d].map { .known($0) })
        let mask = g.input("mask", .float, maskShape.map { .known($0) })
        let product = Self.attention(g, q, kt, mask, v, d: d)
        g.output(transposed ? g.op("Transpose", [product], name: "attn/Transpose", attributes: [Attribute("perm", .ints([0, 2, 1, 3]))])
                 : product)
        let rows = maskShape.count == 1 ? 1 : maskShape[0]
        var maskValues: [Float] = []
        for r in 0..<rows {
            maskValues += maskShape.count == 1 ? [Float](repeating: 0, count: s)
                : Self.causalMask(t: t, s: s, padding: r == 1 ? padding : 0, fullyMasked: fullRow && r == 1 ? [t / 2] : [])
        }
        let inputs = ["q": floats([b, h, t, d], Self.values(b * h * t * d, seed: 6)),
                      "kt": floats([b, h, d, s], Self.values(b * h * d * s, seed: 7)),
                      "v": floats([b, h, s, d], Self.values(b * h * s * d, seed: 8)),
                      "mask": floats(maskShape, maskValues)]
        let (error, _, kinds, reference) = try Self.compare(g, inputs)
        #expect(kinds == ["Attention (masked, fused)"], "\(kinds)")
        #expect(reference == (transposed ? 6 : 5))
        #expect(error <= 2e-6, "worst difference \(error)")
        // The masked-out columns are really skipped: a NaN in k's last column (masked out for
        // row 0 under a causal mask) poisons row 0 of head 0 node by node, not in the fused step,
        // whose first block of 28 rows computes only the first 32-column panel.
        if maskShape.count > 1 && t == s {
            var poisoned = inputs
            var k = inputs["kt"]!.elements(as: Float.self)
            k[s - 1] = .nan
            poisoned["kt"] = floats([b, h, d, s], k)
            let fused = try g.plan(opset: 17).run(inputs: poisoned).values.first!.elements(as: Float.self)
            let plain = try g.plan(opset: 17, options: PlanOptions(fuseElementwise: false)).run(inputs: poisoned)
                .values.first!.elements(as: Float.self)
            #expect(fused[0..<d].allSatisfy { $0.isFinite } && plain[0..<d].allSatisfy { $0.isNaN })
        }
    }

    /// The rotary embedding of a Llama export, with and without the head transpose in front,
    /// cos/sin broadcasting over the heads or over batch and heads; bounds that are not the two
    /// halves (`split` ≠ d/2) run the nodes' kernels inside the fused step. Always the nodes' bits.
    @Test(arguments: [(true, [1, 1, 5, 8], 4), (false, [2, 1, 5, 8], 4), (true, [5, 8], 4), (true, [1, 1, 5, 8], 3)])
    func rotaryEmbeddingGivesTheNodesBits(transposed: Bool, cosShape: [Int], split: Int64) throws {
        let g = TestGraph()
        let (b, h, s, d) = (2, 3, 5, 8)
        let source = g.input("r", .float, (transposed ? [b, s, h, d] : [b, h, s, d]).map { .known($0) })
        let x = transposed ? g.op("Transpose", [source], name: "attn/Transpose", attributes: [Attribute("perm", .ints([0, 2, 1, 3]))])
            : source
        let cos = g.input("cos", .float, cosShape.map { .known($0) }), sin = g.input("sin", .float, cosShape.map { .known($0) })
        let axes = g.constant("axes", int64s([1], [-1]))
        let low = g.op("Slice", [x, g.constant("zero", int64s([1], [0])), g.constant("split", int64s([1], [split])), axes], name: "attn/Slice")
        let high = g.op("Slice", [x, g.constant("split2", int64s([1], [split])), g.constant("end", int64s([1], [Int64.max])), axes],
                        name: "attn/Slice_1")
        let rotated = g.op("Concat", [g.op("Neg", [high], name: "attn/Neg"), low], name: "attn/Concat",
                           attributes: [Attribute("axis", .int(-1))])
        g.output(g.op("Add", [g.op("Mul", [cos, x], name: "attn/Mul"), g.op("Mul", [rotated, sin], name: "attn/Mul_1")], name: "attn/Add"))
        let count = cosShape.reduce(1, *)
        let inputs = ["r": floats(transposed ? [b, s, h, d] : [b, h, s, d], Self.values(b * h * s * d, seed: 9)),
                      "cos": floats(cosShape, Self.values(count, seed: 10, scale: 1)),
                      "sin": floats(cosShape, Self.values(count, seed: 11, scale: 1))]
        let (_, identical, kinds, reference) = try Self.compare(g, inputs)
        #expect(kinds == ["Rotary embedding (fused)"], "\(kinds)")
        #expect(reference == (transposed ? 8 : 7))
        #expect(identical)
    }

    /// RMSNorm as Llama exports it (opset 17: axes as an attribute; 18: as an input), with the
    /// scale, without it, with Reciprocal for the Div; the nodes' bits. A row length that is not
    /// a multiple of 8 exercises the mean's tail; an exponent of 3 runs the nodes' kernels.
    @Test(arguments: [(17, true, false, 2.0, 37), (18, false, false, 2.0, 64), (18, true, true, 2.0, 19), (17, true, false, 3.0, 16)])
    func rmsNormGivesTheNodesBits(opset: Int, scaled: Bool, reciprocal: Bool, exponent: Float, d: Int) throws {
        let g = TestGraph()
        let x = g.input("x", .float, [.known(2), .known(3), .known(d)])
        let square = g.op("Pow", [x, g.constant("two", Tensor(scalar: exponent))], name: "norm/Pow")
        let mean = opset >= 18
            ? g.op("ReduceMean", [square, g.constant("axes", int64s([1], [-1]))], name: "norm/ReduceMean")
            : g.op("ReduceMean", [square], name: "norm/ReduceMean", attributes: [Attribute("axes", .ints([-1]))])
        let root = g.op("Sqrt", [g.op("Add", [mean, g.constant("eps", Tensor(scalar: Float(1e-5)))], name: "norm/Add")], name: "norm/Sqrt")
        let r = reciprocal ? g.op("Reciprocal", [root], name: "norm/Reciprocal")
            : g.op("Div", [g.constant("one", Tensor(scalar: Float(1))), root], name: "norm/Div")
        let normalized = g.op("Mul", [x, r], name: "norm/Mul")
        let y = scaled ? g.op("Mul", [g.constant("w", floats([d], Self.values(d, seed: 14, scale: 2))), normalized], name: "norm/Mul_1")
            : normalized
        g.output(y, g.op("Add", [x, y], name: "residual"))  // x has another reader
        let fused = try g.plan(opset: opset), plain = try g.plan(opset: opset, options: PlanOptions(fuseElementwise: false))
        let inputs = ["x": floats([2, 3, d], Self.values(6 * d, seed: 15, scale: 30))]
        let a = try fused.run(inputs: inputs), b = try plain.run(inputs: inputs)
        #expect(fused.stepInfos.map { $0.kind } == ["RMSNorm (fused)", "Add"], "\(fused.stepInfos.map { $0.kind })")
        #expect(plain.stepCount == (scaled ? 8 : 7))
        for (name, want) in b {
            let got = try #require(a[name]).elements(as: Float.self)
            #expect(zip(got, want.elements(as: Float.self)).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(name)")
        }
    }

    /// float16 decoders (what `tools/convert_float16.py` writes): RMSNorm, the rotary embedding
    /// and SwiGLU are still one step each and compute what the nodes compute, node by node
    /// (each rounded to float16): the same bits, except SwiGLU's SiLU, rounded once as the fused
    /// SiLU is (`Sigmoid` then `Mul` round twice).
    @Test func llamaChainsInFloat16GiveTheNodesBits() throws {
        let g = TestGraph()
        let (b, h, s, d) = (1, 2, 3, 8)
        func half(_ shape: [Int], _ values: [Float]) throws -> Tensor {
            let bits = values.map { Float16($0).bitPattern }
            return try Tensor(dtype: .float16, shape: shape, storage: bits.withUnsafeBytes { TensorStorage(copying: $0) })
        }
        let x = g.input("x", .float16, [b, s, h * d].map { .known($0) })
        let square = g.op("Pow", [x, g.constant("two", try half([], [2]))], name: "norm/Pow")
        let mean = g.op("ReduceMean", [square], name: "norm/ReduceMean", attributes: [Attribute("axes", .ints([-1]))])
        let root = g.op("Sqrt", [g.op("Add", [mean, g.constant("eps", try half([], [1e-5]))], name: "norm/Add")], name: "norm/Sqrt")
        let r = g.op("Div", [g.constant("one", try half([], [1])), root], name: "norm/Div")
        let normed = g.op("Mul", [g.constant("w", try half([h * d], Self.values(h * d, seed: 22, scale: 2))),
                                  g.op("Mul", [x, r], name: "norm/Mul")], name: "norm/Mul_1")
        let heads = g.op("Transpose", [g.op("Reshape", [normed, g.constant("shape", int64s([4], [Int64(b), Int64(s), Int64(h), Int64(d)]))],
                                            name: "attn/Reshape")],
                         name: "attn/Transpose", attributes: [Attribute("perm", .ints([0, 2, 1, 3]))])
        let axes = g.constant("axes", int64s([1], [-1]))
        let low = g.op("Slice", [heads, g.constant("zero", int64s([1], [0])), g.constant("half", int64s([1], [4])), axes], name: "attn/Slice")
        let high = g.op("Slice", [heads, g.constant("half2", int64s([1], [4])), g.constant("end", int64s([1], [Int64.max])), axes],
                        name: "attn/Slice_1")
        let rotated = g.op("Concat", [g.op("Neg", [high], name: "attn/Neg"), low], name: "attn/Concat", attributes: [Attribute("axis", .int(-1))])
        let cos = g.constant("cos", try half([1, 1, s, d], Self.values(s * d, seed: 23, scale: 1)))
        let sin = g.constant("sin", try half([1, 1, s, d], Self.values(s * d, seed: 24, scale: 1)))
        let rope = g.op("Add", [g.op("Mul", [heads, cos], name: "attn/Mul"), g.op("Mul", [rotated, sin], name: "attn/Mul_1")], name: "attn/Add")
        let silu = g.op("Mul", [rope, g.op("Sigmoid", [rope], name: "act/Sigmoid")], name: "act/Mul")
        g.output(rope, g.op("Mul", [silu, g.constant("u", try half([1, 1, s, d], Self.values(s * d, seed: 25)))], name: "mlp/Mul"))
        let fused = try g.plan(opset: 17), plain = try g.plan(opset: 17, options: PlanOptions(fuseElementwise: false))
        #expect(fused.stepInfos.map { $0.kind } == ["RMSNorm (fused)", "Reshape", "Rotary embedding (fused)", "SwiGLU (fused)"],
                "\(fused.stepInfos.map { $0.kind })")
        let inputs = ["x": try half([b, s, h * d], Self.values(b * s * h * d, seed: 26, scale: 3))]
        let a = try fused.run(inputs: inputs), want = try plain.run(inputs: inputs)
        for (name, expected) in want {
            let got = try #require(a[name])
            #expect(got.dtype == .float16)
            if name == rope.name {
                #expect(got.elements(as: UInt16.self) == expected.elements(as: UInt16.self), "\(name)")
            } else {
                let x = got.elements(as: UInt16.self).map { Float(Float16(bitPattern: $0)) }
                let y = expected.elements(as: UInt16.self).map { Float(Float16(bitPattern: $0)) }
                var worst: Float = 0
                for (u, v) in zip(x, y) { worst = max(worst, abs(u - v) / max(1, abs(v))) }
                #expect(worst <= 2e-3, "\(name): \(worst)")
            }
        }
    }

    @Test func swigluIsOneStepAndTheSiLUTimesTheUp() throws {
        let g = TestGraph()
        let gate = g.input("g", .float, [.known(3), .known(5000)]), up = g.input("u", .float, [.known(3), .known(5000)])
        let silu = g.op("Mul", [gate, g.op("Sigmoid", [gate], name: "act/Sigmoid")], name: "act/Mul")
        g.output(g.op("Mul", [up, silu], name: "mlp/Mul"))
        let inputs = ["g": floats([3, 5000], Self.values(15000, seed: 12, scale: 12)), "u": floats([3, 5000], Self.values(15000, seed: 13))]
        let (error, _, kinds, reference) = try Self.compare(g, inputs)
        #expect(kinds == ["SwiGLU (fused)"], "\(kinds)")
        #expect(reference == 3)
        #expect(error < 1e-4, "\(error)")
        // Against the fused SiLU followed by the Mul: the same bits.
        let h = TestGraph()
        let gate2 = h.input("g", .float, [.known(3), .known(5000)]), up2 = h.input("u", .float, [.known(3), .known(5000)])
        let silu2 = h.op("Mul", [gate2, h.op("Sigmoid", [gate2], name: "act/Sigmoid")], name: "act/Mul")
        h.output(silu2, h.op("Mul", [up2, silu2], name: "mlp/Mul"))
        let parts = try h.plan(opset: 17).run(inputs: inputs)
        #expect(try h.plan(opset: 17).stepInfos.map { $0.kind } == ["SiLU (fused)", "Mul"])
        let fused = try g.plan(opset: 17).run(inputs: inputs).values.first!.elements(as: Float.self)
        let separate = try #require(parts.first { $0.key != silu2.name }?.value).elements(as: Float.self)
        #expect(zip(fused, separate).allSatisfy { $0.bitPattern == $1.bitPattern })
    }

    /// Grouped-query attention as Llama exports it: k and v of 2 heads repeated to 4
    /// (Unsqueeze, Expand, Reshape), kᵀ by a Transpose, v from the [B, S, H, D] layout and the
    /// result transposed back: one step reading through all of it. Repeating along axis 1
    /// instead (another head order) is not a plain repeat: the step runs the nodes' kernels.
    @Test(arguments: [2, 1])
    func groupedQueryAttentionReadsThroughTheRepeat(unsqueezeAxis: Int64) throws {
        let g = TestGraph()
        let (b, h, kvh, t, d) = (2, 4, 2, 37, 8)
        let q = g.input("q", .float, [b, h, t, d].map { .known($0) })
        let k = g.input("k", .float, [b, kvh, t, d].map { .known($0) })
        let vSource = g.input("v", .float, [b, t, kvh, d].map { .known($0) })
        let mask = g.input("mask", .float, [1, 1, t, t].map { .known($0) })
        func repeated(_ x: Value, _ name: String) -> Value {
            let shape5: [Int64] = unsqueezeAxis == 2 ? [Int64(b), Int64(kvh), 2, Int64(t), Int64(d)] : [Int64(b), 2, Int64(kvh), Int64(t), Int64(d)]
            let u = g.op("Unsqueeze", [x, g.constant("\(name)/axes", int64s([1], [unsqueezeAxis]))], name: "\(name)/Unsqueeze")
            let e = g.op("Expand", [u, g.constant("\(name)/shape5", int64s([5], shape5))], name: "\(name)/Expand")
            return g.op("Reshape", [e, g.constant("\(name)/shape4", int64s([4], [Int64(b), Int64(h), Int64(t), Int64(d)]))],
                        name: "\(name)/Reshape")
        }
        let perm0213 = [Attribute("perm", .ints([0, 2, 1, 3]))]
        let kt = g.op("Transpose", [repeated(k, "k")], name: "attn/Transpose_k", attributes: [Attribute("perm", .ints([0, 1, 3, 2]))])
        let v = repeated(g.op("Transpose", [vSource], name: "attn/Transpose_v", attributes: perm0213), "v")
        g.output(g.op("Transpose", [Self.attention(g, q, kt, mask, v, d: d)], name: "attn/Transpose_o", attributes: perm0213))
        let inputs = ["q": floats([b, h, t, d], Self.values(b * h * t * d, seed: 16)),
                      "k": floats([b, kvh, t, d], Self.values(b * kvh * t * d, seed: 17)),
                      "v": floats([b, t, kvh, d], Self.values(b * kvh * t * d, seed: 18)),
                      "mask": floats([1, 1, t, t], Self.causalMask(t: t, s: t, padding: 0, fullyMasked: []))]
        let (error, _, kinds, reference) = try Self.compare(g, inputs)
        #expect(kinds == ["Attention (masked, fused)"], "\(kinds)")
        #expect(reference == 14)
        #expect(error <= 2e-6, "worst difference \(error)")
    }

    /// BERT's attention: q, kᵀ (one Transpose [0, 2, 3, 1]) and v all from the [B, S, H, D]
    /// layout of the projections, a padding mask over the batch, the result transposed back.
    @Test func bertAttentionReadsTheProjectionsInPlace() throws {
        let g = TestGraph()
        let (b, h, t, d) = (2, 3, 45, 8)
        let layout = [b, t, h, d].map { Dim.known($0) }
        let q = g.input("q", .float, layout), k = g.input("k", .float, layout), v = g.input("v", .float, layout)
        let mask = g.input("mask", .float, [b, 1, 1, t].map { .known($0) })
        let perm0213 = [Attribute("perm", .ints([0, 2, 1, 3]))]
        let product = Self.attention(g, g.op("Transpose", [q], name: "attn/Transpose_q", attributes: perm0213),
                                     g.op("Transpose", [k], name: "attn/Transpose_k", attributes: [Attribute("perm", .ints([0, 2, 3, 1]))]),
                                     mask, g.op("Transpose", [v], name: "attn/Transpose_v", attributes: perm0213), d: d)
        g.output(g.op("Transpose", [product], name: "attn/Transpose_o", attributes: perm0213))
        var maskValues = [Float](repeating: 0, count: b * t)
        for j in (t - 6)..<t { maskValues[t + j] = -Float.greatestFiniteMagnitude }  // padding in sample 1
        let count = b * t * h * d
        let inputs = ["q": floats([b, t, h, d], Self.values(count, seed: 19)), "k": floats([b, t, h, d], Self.values(count, seed: 20)),
                      "v": floats([b, t, h, d], Self.values(count, seed: 21)), "mask": floats([b, 1, 1, t], maskValues)]
        let (error, _, kinds, reference) = try Self.compare(g, inputs)
        #expect(kinds == ["Attention (masked, fused)"], "\(kinds)")
        #expect(reference == 9)
        #expect(error <= 2e-6, "worst difference \(error)")
    }

    @Test func chainsWithAnotherReaderOrAnObservedValueStayNodes() throws {
        let g = TestGraph()
        let x = g.input("x", .float, [.known(4)])
        let sigmoid = g.op("Sigmoid", [x], name: "Sigmoid")
        g.output(g.op("Mul", [x, sigmoid], name: "Mul"), g.op("Relu", [sigmoid], name: "other"))
        let kept = try g.plan().stepInfos.map { $0.kind }
        #expect(kept == ["Sigmoid", "Mul", "Relu"])

        let h = TestGraph()
        let y = h.input("y", .float, [.known(4)])
        h.output(h.op("Mul", [y, h.op("Sigmoid", [y], name: "Sigmoid")], name: "Mul"))
        let fused = try h.plan().stepInfos.map { $0.kind }
        #expect(fused == ["SiLU (fused)"])
        let observed = try h.plan(options: PlanOptions(observable: ["Sigmoid"])).stepInfos.map { $0.kind }
        #expect(observed == ["Sigmoid", "Mul"])
    }
}
