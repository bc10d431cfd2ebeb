import SQIR
@testable import SQRuntime
import Testing

/// The int8 lowering of QDQ MatMul/Gemm patterns (as the quantize pass writes them at
/// O1/O2/O3) against the same graph run node by node (QuantizeLinear, DequantizeLinear and
/// a float MatMul, which the ONNX backend tests check): the results agree to float
/// rounding, and the fused plan runs fewer kernels.
@Suite struct Int8LoweringTests {
    enum Policy { case O1, O2, O3 }

    let k = 48, n = 40
    var rng = SplitMix64(seed: 7)

    mutating func randomFloats(_ count: Int, _ range: ClosedRange<Float>) -> [Float] {
        (0..<count).map { _ in Float.random(in: range, using: &rng) }
    }

    /// x → Q → DQ with the policy's scale; returns the DQ output.
    static func qdq(_ g: TestGraph, _ x: Value, _ policy: Policy, axis: Int = -1, block: Int, name: String) -> Value {
        let zp = g.constant("\(name)_zp", Tensor(scalar: Int8(0)))
        let scale: Value
        switch policy {
        case .O3:
            scale = g.constant("\(name)_scale", Tensor(scalar: Float(0.021)))
        case .O2, .O1:
            let absolute = g.op("Abs", [x], name: "\(name)/Abs")
            var reduceInputs: [Value?] = [absolute]
            if policy == .O1 { reduceInputs.append(g.constant("\(name)_axes", int64s([1], [Int64(axis)]))) }
            let reduced = g.op("ReduceMax", reduceInputs, name: "\(name)/ReduceMax",
                               attributes: [Attribute("keepdims", .int(policy == .O1 ? 1 : 0))])
            let divided = g.op("Div", [reduced, g.constant("\(name)_127", Tensor(scalar: Float(127)))], name: "\(name)/Div")
            scale = g.op("Max", [divided, g.constant("\(name)_tiny", Tensor(scalar: Float.leastNormalMagnitude))], name: "\(name)/Max")
        }
        if policy == .O1 {
            let attributes = [Attribute("axis", .int(axis)), Attribute("block_size", .int(block))]
            let q = g.op("QuantizeLinear", [x, scale], name: "\(name)/Q",
                         attributes: attributes + [Attribute("output_dtype", .int(Int(DType.int8.rawValue)))])
            return g.op("DequantizeLinear", [q, scale], name: "\(name)/DQ", attributes: attributes)
        }
        let q = g.op("QuantizeLinear", [x, scale, zp], name: "\(name)/Q")
        return g.op("DequantizeLinear", [q, scale, zp], name: "\(name)/DQ")
    }

    mutating func weight(_ g: TestGraph, perChannel: Bool, transposed: Bool) -> Value {
        let shape = transposed ? [n, k] : [k, n]
        let values = (0..<(k * n)).map { _ in Int8.random(in: -127...127, using: &rng) }
        let w = g.constant("w", Tensor(shape: shape, values: values))
        let scales = perChannel ? randomFloats(n, 0.001...0.01) : [0.004]
        let s = g.constant("w_scale", perChannel ? floats([n], scales) : Tensor(scalar: scales[0]))
        let zp = perChannel ? Tensor.zeros(.int8, shape: [n]) : Tensor(scalar: Int8(0))
        return g.op("DequantizeLinear", [w, s, g.constant("w_zp", zp)], name: "w/DQ",
                    attributes: [Attribute("axis", .int(transposed ? 0 : 1))])
    }

    /// Runs `g` with and without the int8 lowering; returns the worst relative difference
    /// and the two step counts.
    static func compare(_ g: TestGraph, _ inputs: [String: Tensor]) throws -> (error: Double, fused: Int, reference: Int) {
        let fused = try g.plan(opset: 21)
        let reference = try g.plan(opset: 21, options: PlanOptions(lowerInt8: false))
        let a = try fused.run(inputs: inputs), b = try reference.run(inputs: inputs)
        var worst = 0.0
        for (name, want) in b {
            let got = try #require(a[name])
            #expect(got.shape == want.shape)
            let x = got.elements(as: Float.self), y = want.elements(as: Float.self)
            let scale = Double(y.map { abs($0) }.max() ?? 1)
            for i in 0..<y.count { worst = max(worst, Double(abs(x[i] - y[i])) / max(scale, 1e-30)) }
        }
        return (worst, fused.stepCount, reference.stepCount)
    }

    @Test(arguments: [Policy.O1, .O2, .O3], [false, true])
    mutating func linearMatMul(policy: Policy, perChannel: Bool) throws {
        let g = TestGraph()
        let x = g.input("x", .float, [.symbolic("batch"), .symbolic("seq"), .known(k)])
        let xq = Self.qdq(g, x, policy, block: k, name: "x")
        g.output(g.op("MatMul", [xq, weight(g, perChannel: perChannel, transposed: false)], name: "linear"))
        let input = floats([2, 5, k], randomFloats(2 * 5 * k, -2...2))
        let (error, fused, reference) = try Self.compare(g, ["x": input])
        #expect(error < 1e-5, "\(policy) per-channel \(perChannel): relative error \(error)")
        // Q and DQ are absorbed; under O1 the scale subgraph (Abs, ReduceMax, Div, Max) too.
        #expect(fused == reference - (policy == .O1 ? 6 : 2), "\(fused) vs \(reference) steps")
    }

    @Test(arguments: [Policy.O1, .O3])
    mutating func biasAddJoinsTheKernel(policy: Policy) throws {
        let g = TestGraph()
        let x = g.input("x", .float, [.symbolic("batch"), .known(k)])
        let xq = Self.qdq(g, x, policy, block: k, name: "x")
        let product = g.op("MatMul", [xq, weight(g, perChannel: true, transposed: false)], name: "linear")
        let bias = g.constant("bias", floats([n], randomFloats(n, -1...1)))
        g.output(g.op("Add", [bias, product], name: "linear/Add"))
        let (error, fused, reference) = try Self.compare(g, ["x": floats([6, k], randomFloats(6 * k, -2...2))])
        #expect(error < 1e-5, "\(policy): relative error \(error)")
        #expect(fused == reference - (policy == .O1 ? 7 : 3), "\(fused) vs \(reference) steps")
        let kinds = try g.plan(opset: 21).stepInfos.map { $0.kind }
        #expect(kinds == ["MatMul+Add (int8)"], "\(kinds)")
    }

    /// BERT's FFN: an int8 MatMul+Add then the exported GELU (or a SiLU) read only by it are
    /// one step, the activation applied to blocks of 64 rows as the product writes them: the
    /// bits of the two steps (the plan without elementwise fusion runs the chain's nodes, so it
    /// is compared with the fused activation step instead).
    @Test(arguments: [Policy.O1, .O3], [true, false])
    mutating func activationJoinsTheInt8Product(policy: Policy, gelu: Bool) throws {
        let seed = rng  // both graphs get the same weights
        func build(observeProduct: Bool) -> TestGraph {
            rng = seed
            let g = TestGraph()
            let x = g.input("x", .float, [.symbolic("batch"), .known(k)])
            let xq = Self.qdq(g, x, policy, block: k, name: "x")
            let product = g.op("MatMul", [xq, weight(g, perChannel: true, transposed: false)], name: "linear")
            let y = g.op("Add", [product, g.constant("bias", floats([n], (0..<n).map { Float($0 % 7) / 7 - 0.4 }))], name: "linear/Add")
            if gelu {
                let div = g.op("Div", [y, g.constant("sqrt2", Tensor(scalar: Float(2).squareRoot()))], name: "act/Div")
                let sum = g.op("Add", [g.op("Erf", [div], name: "act/Erf"), g.constant("one", Tensor(scalar: Float(1)))], name: "act/Add")
                let out = g.op("Mul", [g.op("Mul", [y, sum], name: "act/Mul"), g.constant("half", Tensor(scalar: Float(0.5)))], name: "act/Mul_1")
                if observeProduct { g.output(out, y) } else { g.output(out) }
            } else {
                let out = g.op("Mul", [y, g.op("Sigmoid", [y], name: "act/Sigmoid")], name: "act/Mul")
                if observeProduct { g.output(out, y) } else { g.output(out) }
            }
            return g
        }
        let rows = 150  // three blocks of 64 rows, the last partial
        let inputs = ["x": floats([rows, k], randomFloats(rows * k, -2...2))]
        let joined = try build(observeProduct: false).plan(opset: 21)
        let kind = gelu ? "MatMul+Add+Gelu (int8)" : "MatMul+Add+SiLU (int8)"
        #expect(joined.stepInfos.map { $0.kind } == [kind], "\(joined.stepInfos.map { $0.kind })")
        // With the product a graph output too, the product and the activation stay two steps.
        let separate = try build(observeProduct: true).plan(opset: 21)
        #expect(separate.stepInfos.map { $0.kind } == ["MatMul+Add (int8)", gelu ? "Gelu (fused)" : "SiLU (fused)"],
                "\(separate.stepInfos.map { $0.kind })")
        let a = try joined.run(inputs: inputs), b = try separate.run(inputs: inputs)
        let name = try #require(a.keys.first)
        let got = try #require(a[name]).elements(as: Float.self), want = try #require(b[name]).elements(as: Float.self)
        let firstDifference = zip(got, want).enumerated().first { $0.element.0.bitPattern != $0.element.1.bitPattern }
        #expect(got.count == rows * n && firstDifference == nil, "\(String(describing: firstDifference))")
    }

    /// The onnxruntime target's form of `qdq`: uint8 codes with zero point 128; a dynamic
    /// scale Δ applied as `Q(Div(x, Δ), 1, 128)`, or (`byDelta`, max |x| as
    /// `Max(ReduceMax(x), Neg(ReduceMin(x)))`) `DQ(Q(x, Δ, zp), 1, 128)` with zp 128 per tensor
    /// and `Expand(128, Shape(Δ))` blocked per row; Δ returned for the Mul after the product.
    static func uint8QDQ(_ g: TestGraph, _ x: Value, _ policy: Policy, k: Int = 0, byDelta: Bool = false,
                         name: String) -> (value: Value, postScale: Value?) {
        let zp = g.constant("\(name)_zp", Tensor(scalar: UInt8(128)))
        if policy == .O3 {
            let scale = g.constant("\(name)_scale", Tensor(scalar: Float(0.021)))
            let q = g.op("QuantizeLinear", [x, scale, zp], name: "\(name)/Q")
            return (g.op("DequantizeLinear", [q, scale, zp], name: "\(name)/DQ"), nil)
        }
        let axes: [Value?] = policy == .O1 ? [g.constant("\(name)_axes", int64s([1], [-1]))] : []
        let keepDims = [Attribute("keepdims", .int(policy == .O1 ? 1 : 0))]
        let absMax: Value
        if byDelta {
            let high = g.op("ReduceMax", [Value?]([x]) + axes, name: "\(name)/ReduceMax", attributes: keepDims)
            let low = g.op("ReduceMin", [Value?]([x]) + axes, name: "\(name)/ReduceMin", attributes: keepDims)
            absMax = g.op("Max", [high, g.op("Neg", [low], name: "\(name)/Neg")], name: "\(name)/AbsMax")
        } else {
            let absolute = g.op("Abs", [x], name: "\(name)/Abs")
            absMax = g.op("ReduceMax", [Value?]([absolute]) + axes, name: "\(name)/ReduceMax", attributes: keepDims)
        }
        let divided = g.op("Div", [absMax, g.constant("\(name)_127", Tensor(scalar: Float(127)))], name: "\(name)/Div")
        let scale = g.op("Max", [divided, g.constant("\(name)_tiny", Tensor(scalar: Float.leastNormalMagnitude))], name: "\(name)/Max")
        if policy == .O2 { scale.type = TensorType(.float, shape: []) }
        let one = g.constant("\(name)_one", Tensor(scalar: Float(1)))
        if byDelta {
            if policy == .O1 {
                let shape = g.op("Shape", [scale], name: "\(name)/ZeroPointShape")
                let rowZeroPoints = g.op("Expand", [zp, shape], name: "\(name)/ZeroPoint")
                let q = g.op("QuantizeLinear", [x, scale, rowZeroPoints], name: "\(name)/Q",
                             attributes: [Attribute("axis", .int(-1)), Attribute("block_size", .int(k))])
                return (g.op("DequantizeLinear", [q, one, zp], name: "\(name)/DQ"), scale)
            }
            let q = g.op("QuantizeLinear", [x, scale, zp], name: "\(name)/Q")
            return (g.op("DequantizeLinear", [q, one, zp], name: "\(name)/DQ"), scale)
        }
        let scaled = g.op("Div", [x, scale], name: "\(name)/Apply")
        let q = g.op("QuantizeLinear", [scaled, one, zp], name: "\(name)/Q")
        return (g.op("DequantizeLinear", [q, one, zp], name: "\(name)/DQ"), scale)
    }

    /// `quantize{target=onnxruntime}`'s forms run as one int8 kernel, with the bits of the
    /// portable QDQ form's kernel (the same codes, the same scales).
    @Test(arguments: [Policy.O1, .O2, .O3], [false, true])
    mutating func onnxruntimeTargetRunsTheSameKernel(policy: Policy, withBias: Bool) throws {
        try checkOnnxruntimeForm(policy: policy, withBias: withBias, byDelta: false)
    }

    /// The same for the form quantizing with Δ itself (`QDQForms.quantizedByDelta`, no Div).
    @Test(arguments: [Policy.O1, .O2], [false, true])
    mutating func onnxruntimeQuantizedByDeltaRunsTheSameKernel(policy: Policy, withBias: Bool) throws {
        try checkOnnxruntimeForm(policy: policy, withBias: withBias, byDelta: true)
    }

    mutating func checkOnnxruntimeForm(policy: Policy, withBias: Bool, byDelta: Bool) throws {
        let start = rng
        let k = self.k
        let bias = floats([n], randomFloats(n, -1...1))
        let input = floats([2, 5, k], randomFloats(2 * 5 * k, -2...2))
        func build(_ uint8: Bool, _ test: inout Int8LoweringTests) -> TestGraph {
            test.rng = start
            let g = TestGraph()
            let x = g.input("x", .float, [.symbolic("batch"), .symbolic("seq"), .known(k)])
            var y: Value
            if uint8 {
                let (xq, post) = Self.uint8QDQ(g, x, policy, k: k, byDelta: byDelta, name: "x")
                y = g.op("MatMul", [xq, test.weight(g, perChannel: true, transposed: false)], name: "linear")
                if let post { y = g.op("Mul", [y, post], name: "linear/ApplyScale") }
            } else {
                let xq = Self.qdq(g, x, policy, block: k, name: "x")
                y = g.op("MatMul", [xq, test.weight(g, perChannel: true, transposed: false)], name: "linear")
            }
            if withBias { y = g.op("Add", [y, g.constant("bias", bias)], name: "linear/Add") }
            g.output(y)
            return g
        }
        let target = build(true, &self), portable = build(false, &self)
        let (error, _, _) = try Self.compare(target, ["x": input])
        #expect(error < 1e-5, "\(policy): relative error \(error) against the node-by-node graph")
        let kinds = try target.plan(opset: 21).stepInfos.map { $0.kind }
        // O2's per-tensor scale stays a graph computation (as in the QDQ form); the rest is one kernel.
        let scaleSteps = policy != .O2 ? [] : byDelta ? ["ReduceMax", "ReduceMin", "Neg", "Max", "Div", "Max"] : ["Abs", "ReduceMax", "Div", "Max"]
        #expect(kinds == scaleSteps + [withBias ? "MatMul+Add (int8)" : "MatMul (int8)"], "\(policy): \(kinds)")
        let a = try #require(try target.plan(opset: 21).run(inputs: ["x": input]).values.first)
        let b = try #require(try portable.plan(opset: 21).run(inputs: ["x": input]).values.first)
        #expect(a.elements(as: Float.self).map(\.bitPattern) == b.elements(as: Float.self).map(\.bitPattern),
                "\(policy): the onnxruntime form and the QDQ form differ")
    }

    @Test mutating func biasAddStaysWhenTheProductIsAlsoAnOutput() throws {
        let g = TestGraph()
        let x = g.input("x", .float, [.known(3), .known(k)])
        let xq = Self.qdq(g, x, .O3, block: k, name: "x")
        let product = g.op("MatMul", [xq, weight(g, perChannel: false, transposed: false)], name: "linear")
        let sum = g.op("Add", [product, g.constant("bias", floats([n], randomFloats(n, -1...1)))], name: "linear/Add")
        g.output(product, sum)
        let (error, _, _) = try Self.compare(g, ["x": floats([3, k], randomFloats(3 * k, -1...1))])
        #expect(error < 1e-5)
        let kinds = try g.plan(opset: 21).stepInfos.map { $0.kind }
        #expect(kinds == ["MatMul (int8)", "Add"])
    }

    @Test mutating func dynamicScalesPropagateNaNAsTheGraphDoes() throws {
        // A row holding NaN: ReduceMax gives NaN, so the graph's row is NaN; the fused
        // kernel computes the same scales and gives NaN in the same row only.
        let g = TestGraph()
        let x = g.input("x", .float, [.known(3), .known(k)])
        let xq = Self.qdq(g, x, .O1, block: k, name: "x")
        g.output(g.op("MatMul", [xq, weight(g, perChannel: false, transposed: false)], name: "linear"))
        var values = randomFloats(3 * k, -1...1)
        values[k + 5] = .nan
        let input = floats([3, k], values)
        let fused = try g.plan(opset: 21).run(inputs: ["x": input])
        let reference = try g.plan(opset: 21, options: PlanOptions(lowerInt8: false)).run(inputs: ["x": input])
        let a = try #require(fused.values.first).elements(as: Float.self)
        let b = try #require(reference.values.first).elements(as: Float.self)
        #expect(a.map(\.isNaN) == b.map(\.isNaN))
        let nanRow = a[n..<(2 * n)].allSatisfy { $0.isNaN }, cleanRow = !a[..<n].contains { $0.isNaN }
        #expect(nanRow && cleanRow)
    }

    @Test mutating func gemmWithBias() throws {
        let g = TestGraph()
        let x = g.input("x", .float, [.symbolic("rows"), .known(k)])
        let xq = Self.qdq(g, x, .O1, block: k, name: "x")
        let bias = g.constant("bias", floats([n], randomFloats(n, -1...1)))
        g.output(g.op("Gemm", [xq, weight(g, perChannel: true, transposed: true), bias], name: "gemm",
                      attributes: [Attribute("transB", .int(1))]))
        let (error, fused, reference) = try Self.compare(g, ["x": floats([7, k], randomFloats(7 * k, -3...3))])
        #expect(error < 1e-5)
        #expect(fused == reference - 6)  // Q, DQ and the O1 scale subgraph
    }

    @Test(arguments: [Policy.O1, .O2, .O3])
    mutating func attentionMatMul(policy: Policy) throws {
        // scores = Q·Kᵀ with Kᵀ [b, h, d, t]: A per row, B per column under O1.
        let g = TestGraph()
        let q = g.input("q", .float, [.known(2), .known(3), .symbolic("t"), .known(16)])
        let kT = g.input("kT", .float, [.known(2), .known(3), .known(16), .symbolic("t")])
        let qq = Self.qdq(g, q, policy, axis: -1, block: 16, name: "q")
        let kq = Self.qdq(g, kT, policy, axis: -2, block: 16, name: "k")
        g.output(g.op("MatMul", [qq, kq], name: "scores"))
        let inputs = ["q": floats([2, 3, 9, 16], randomFloats(864, -2...2)), "kT": floats([2, 3, 16, 9], randomFloats(864, -2...2))]
        let (error, fused, reference) = try Self.compare(g, inputs)
        #expect(error < 1e-5, "\(policy): relative error \(error)")
        // Q and DQ of both operands; under O1/O2 their scale subgraphs too.
        #expect(fused == reference - (policy == .O3 ? 4 : 12))
    }

    /// Shapes of the attention tests: batch dims, tokens t, head dim d (edge sizes: 1, tails
    /// of the 16-lane kernels, more columns than one 64-column block).
    static let attentionShapes: [(batch: [Int], t: Int, d: Int)] = [
        ([1, 1], 1, 1), ([2, 3], 9, 16), ([1, 9], 33, 64), ([2, 2], 17, 5), ([1, 3], 70, 20),
    ]

    /// Q·Kᵀ and P·V with the O1 or O2 QDQ of the quantize pass (O1: Q per row, Kᵀ per
    /// column, P and V per tensor as O1 writes them when t is symbolic; O2: all per tensor).
    /// The plan absorbs every scale subgraph into the two batched kernels; the result must be
    /// the same bits as the unfused int8 kernel fed with the scales the graph's nodes compute
    /// (run node by node, observed), NaN rows included.
    @Test(arguments: [Policy.O1, .O2], 0..<5)
    mutating func absorbedAttentionScalesGiveTheSameBits(policy: Policy, shapeIndex: Int) throws {
        let (batch, t, d) = Self.attentionShapes[shapeIndex]
        let g = TestGraph()
        let dims: ([Int]) -> [Dim] = { $0.map { .known($0) } }
        let q = g.input("q", .float, dims(batch + [t, d]))
        let kT = g.input("kT", .float, dims(batch + [d, t]))
        let v = g.input("v", .float, dims(batch + [t, d]))
        let p = g.input("p", .float, dims(batch + [t, t]))
        let qq = Self.qdq(g, q, policy, axis: -1, block: d, name: "q")
        let kq = Self.qdq(g, kT, policy, axis: -2, block: d, name: "k")
        let pq = Self.qdq(g, p, .O2, block: 0, name: "p"), vq = Self.qdq(g, v, .O2, block: 0, name: "v")
        g.output(g.op("MatMul", [qq, kq], name: "scores"), g.op("MatMul", [pq, vq], name: "context"))
        let count = batch.reduce(1, *) * t * d
        let fused = try g.plan(opset: 21)
        let reference = try g.plan(opset: 21, options: PlanOptions(lowerInt8: false))
        #expect(fused.stepInfos.map(\.kind) == ["MatMul (int8 batched)", "MatMul (int8 batched)"])
        #expect(fused.stepCount == reference.stepCount - 4 * 6)  // per operand: Q, DQ, Abs, ReduceMax, Div, Max
        for withNaN in [false, true] {
            var qValues = randomFloats(count, -3...3), kValues = randomFloats(count, -3...3)
            if withNaN { qValues[count / 2] = .nan; kValues[(d / 2) * t + t / 2] = .nan }  // a NaN row of Q, a NaN column of Kᵀ
            let inputs = ["q": floats(batch + [t, d], qValues), "kT": floats(batch + [d, t], kValues),
                          "v": floats(batch + [t, d], randomFloats(count, -2...2)),
                          "p": floats(batch + [t, t], randomFloats(count / d * t, 0...1))]
            var observed: [String: Tensor] = [:]
            _ = try reference.run(inputs: inputs, observe: nil) { name, tensor in observed[name] = tensor }
            let pool = BufferPool(maxTensorBytes: 1 << 30)
            let rows = policy == .O1 ? ActivationQDQ(axis: -1, blockSize: d) : ActivationQDQ(axis: 1, blockSize: 0)
            let columns = policy == .O1 ? ActivationQDQ(axis: -2, blockSize: d) : ActivationQDQ(axis: 1, blockSize: 0)
            let perTensor = ActivationQDQ(axis: 1, blockSize: 0)
            let scoresWant = try #require(Int8BatchedMatMulKernel(a: rows, b: columns)
                .run([inputs["q"], observed["q/Max"], inputs["kT"], observed["k/Max"]], pool).first ?? nil)
            let contextWant = try #require(Int8BatchedMatMulKernel(a: perTensor, b: perTensor)
                .run([inputs["p"], observed["p/Max"], inputs["v"], observed["v/Max"]], pool).first ?? nil)

            let outputs = try fused.run(inputs: inputs)
            func bits(_ t: Tensor?) -> [UInt32] { (t?.elements(as: Float.self) ?? []).map { $0.isNaN ? 0x7fc0_0000 : $0.bitPattern } }
            let label = "\(policy) \(batch) t \(t) d \(d) NaN \(withNaN)"
            #expect(!bits(scoresWant).isEmpty)
            #expect(bits(outputs["scores"]) == bits(scoresWant), "\(label): Q·Kᵀ")
            #expect(bits(outputs["context"]) == bits(contextWant), "\(label): P·V")
            if !withNaN {  // and the float reference within rounding
                let (error, _, _) = try Self.compare(g, inputs)
                #expect(error < 1e-5, "\(label): relative error \(error)")
            }
        }
    }

    @Test mutating func attentionScalesOfOtherLayoutsFallBack() throws {
        // Kᵀ blocked along -2 with two blocks per column: not the int8 layout. The fused
        // kernel computes the graph's scales itself and then the reference; both paths agree
        // (here: both report QuantizeLinear's shape error).
        let g = TestGraph()
        let q = g.input("q", .float, [.known(2), .known(5), .known(16)])
        let kT = g.input("kT", .float, [.known(2), .known(16), .known(5)])
        let qq = Self.qdq(g, q, .O1, axis: -1, block: 16, name: "q")
        let kq = Self.qdq(g, kT, .O1, axis: -2, block: 8, name: "k")
        g.output(g.op("MatMul", [qq, kq], name: "scores"))
        let inputs = ["q": floats([2, 5, 16], randomFloats(160, -1...1)), "kT": floats([2, 16, 5], randomFloats(160, -1...1))]
        let fused = try g.plan(opset: 21), reference = try g.plan(opset: 21, options: PlanOptions(lowerInt8: false))
        #expect(irError { _ = try fused.run(inputs: inputs) } != nil)
        #expect(irError { _ = try reference.run(inputs: inputs) } != nil)
        // A 2-D product (no batch dims), per-tensor dynamic operands: the fused path.
        let g2 = TestGraph()
        let q2 = g2.input("q", .float, [.known(3), .known(4)])
        let k2 = g2.input("kT", .float, [.known(4), .known(6)])
        g2.output(g2.op("MatMul", [Self.qdq(g2, q2, .O2, block: 0, name: "q"), Self.qdq(g2, k2, .O2, block: 0, name: "k")], name: "s"))
        let (error, _, _) = try Self.compare(g2, ["q": floats([3, 4], randomFloats(12, -1...1)), "kT": floats([4, 6], randomFloats(24, -1...1))])
        #expect(error < 1e-5)
    }

    @Test mutating func sharedQDQStaysWhenAnotherNodeReadsIt() throws {
        let g = TestGraph()
        let x = g.input("x", .float, [.known(3), .known(k)])
        let xq = Self.qdq(g, x, .O3, block: k, name: "x")
        let y = g.op("MatMul", [xq, weight(g, perChannel: false, transposed: false)], name: "linear")
        let other = g.op("Relu", [xq], name: "other_reader")
        g.output(y, other)
        let (error, fused, reference) = try Self.compare(g, ["x": floats([3, k], randomFloats(3 * k, -1...1))])
        #expect(error < 1e-5)
        #expect(fused == reference)  // Q and DQ still run for the Relu; the MatMul is int8
    }

    @Test mutating func unsupportedScalesFallBack() throws {
        // A blocked scale whose block is not the whole row: the fused kernel computes the
        // reference way instead.
        let g = TestGraph()
        let x = g.input("x", .float, [.known(4), .known(k)])
        let xq = Self.qdq(g, x, .O1, block: k / 2, name: "x")
        g.output(g.op("MatMul", [xq, weight(g, perChannel: false, transposed: false)], name: "linear"))
        // ReduceMax over the last axis gives one scale per row, but block_size k/2 needs two:
        // both paths must report the same shape error.
        let plan = try g.plan(opset: 21)
        let reference = try g.plan(opset: 21, options: PlanOptions(lowerInt8: false))
        let input = floats([4, k], randomFloats(4 * k, -1...1))
        #expect(irError { _ = try plan.run(inputs: ["x": input]) } != nil)
        #expect(irError { _ = try reference.run(inputs: ["x": input]) } != nil)
    }
}

/// Which scale layouts take the int8 path (the rest fall back to the reference).
@Suite struct Int8ScaleLayoutTests {
    @Test func rowScalesAcceptPerTensorAndPerRow() {
        let x = Tensor.zeros(.float, shape: [2, 5, 8])
        let perRow = ActivationQDQ(axis: -1, blockSize: 8)
        #expect(rowScales(x, Tensor(scalar: Float(0.5)), ActivationQDQ(axis: 1, blockSize: 0)) == [0.5])
        #expect(rowScales(x, Tensor.zeros(.float, shape: [2, 5, 1]), perRow)?.count == 10)
        #expect(rowScales(x, Tensor.zeros(.float, shape: [2, 5, 2]), ActivationQDQ(axis: -1, blockSize: 4)) == nil)
        #expect(rowScales(x, Tensor.zeros(.float, shape: [2, 1, 8]), ActivationQDQ(axis: -2, blockSize: 5)) == nil)
        #expect(rowScales(x, Tensor.zeros(.float, shape: [8]), ActivationQDQ(axis: -1, blockSize: 0)) == nil)
    }

    @Test func columnScalesAcceptPerTensorAndPerColumn() {
        let kernel = Int8BatchedMatMulKernel(a: ActivationQDQ(axis: -1, blockSize: 16), b: ActivationQDQ(axis: -2, blockSize: 16))
        let kT = Tensor.zeros(.float, shape: [2, 3, 16, 9])
        #expect(kernel.columnScales(kT, Tensor(scalar: Float(1))) == [1])
        #expect(kernel.columnScales(kT, Tensor.zeros(.float, shape: [2, 3, 1, 9]))?.count == 54)
        #expect(kernel.columnScales(kT, Tensor.zeros(.float, shape: [2, 3, 16, 1])) == nil)
    }
}
