import SQIR
import SQRuntime
import Testing
@testable import SQPasses

/// `QDQForms` round trip: for every policy, target and weight granularity, what `quantize`
/// writes (QDQBuilder) is matched by the patterns the int8 lowering matches with, and the
/// plan runs every Q/DQ pair inside an int8 kernel (none is left as a float step).
@Suite struct QDQFormsRoundTripTests {
    static let cases: [(QuantPolicy, QuantTarget, WeightGranularity)] = [QuantPolicy.O1, .O2, .O3].flatMap { policy in
        QuantTarget.allCases.flatMap { target in [WeightGranularity.perTensor, .perChannel].map { (policy, target, $0) } }
    }

    /// `y = MatMul(h, Transpose(h))`, `h = MatMul(x, W1)`, `g = Gemm(x, W2ᵀ, b)` (transB = 1),
    /// `o = MatMul(Relu(h), W3)`: three linears (Relu(h) read by a MatMul with a weight only)
    /// and (`bmm`) a product of two activations.
    static func quantized(_ policy: QuantPolicy, _ target: QuantTarget, _ weights: WeightGranularity) throws -> Model {
        let t = SQTestGraph()
        let x = t.input("x", [.known(2), .known(8)])
        let h = t.op("MatMul", "fc", [x, t.randomConstant("w1", shape: [8, 8], seed: 1)])
        let ht = t.op("Transpose", "transpose", [h], [Attribute("perm", .ints([1, 0]))])
        t.output(t.op("MatMul", "scores", [h, ht]))
        t.output(t.op("Gemm", "proj", [x, t.randomConstant("w2", shape: [4, 8], seed: 2), t.randomConstant("b", shape: [4], seed: 3)],
                      [Attribute("transB", .int(1))]))
        let r = t.op("Relu", "relu", [h])
        t.output(t.op("MatMul", "out", [r, t.randomConstant("w3", shape: [8, 4], seed: 4)]))
        var stats = CalibrationStatistics(fingerprint: ModelFingerprint.of(t.graph))
        let rows: [[Float]] = [(0..<8).map { Float($0) - 3.5 }, (0..<8).map { 2 - Float($0) / 2 }]
        for name in ["x", h.name, r.name] { stats[name] = sqStatistics(rows: rows) }
        stats[ht.name] = sqStatistics(rows: [[1.5, -2], [-0.5, 3]])
        let model = t.model
        _ = try W8A8Quantizer(options: QuantizeOptions(policy: policy, weights: weights, bmm: true, lmHead: true, target: target))
            .run(on: model.graph, statistics: stats)
        _ = try UpgradeOpset(options: PassOptions().setting(UpgradeOpset.to, Quantize.opset)).run(on: model, context: PassContext())
        return model
    }

    @Test(arguments: cases)
    func everyWrittenFormIsMatchedAndLowered(_ policy: QuantPolicy, _ target: QuantTarget, _ weights: WeightGranularity) throws {
        let model = try Self.quantized(policy, target, weights)
        let label = "\(policy) \(target) \(weights.rawValue)"
        let nodes = model.graph.nodes
        let dequantizers = nodes.filter { $0.isOp(QDQForms.dequantizeOp) }
        #expect(dequantizers.count == 7, "\(label)")
        for dq in dequantizers {
            let out = try #require(dq.output(0))
            let form = dq.input(0)?.constant != nil ? QDQForms.weight : .oneOf(QDQForms.activation(), QDQForms.quantizedByDelta)
            #expect(PatternMatcher.match(form, value: out) != nil, "\(label): \(dq.name) is not matched")
        }
        // fc's operand (read by a MatMul with a weight only) is quantized with Δ itself for
        // onnxruntime; the Gemm's and the scores' operands keep the older Div form.
        // (The older form's scale-1 pair matches `quantizedByDelta` too, with Δ = 1.)
        let byDelta = dequantizers.filter { dq in
            dq.output(0).flatMap { PatternMatcher.match(QDQForms.quantizedByDelta, value: $0) }.map { $0["delta"]?.knownConstant == nil } ?? false
        }
        #expect(byDelta.count == (target == .onnxruntime && policy != .O3 ? 1 : 0), "\(label): \(byDelta.map(\.name))")
        let divisions = nodes.filter { $0.isOp(QDQForms.applyScaleOp) && $0.name.hasSuffix("/scale/Apply") }
        #expect(divisions.count == (target == .onnxruntime && policy != .O3 ? 3 : 0), "\(label)")
        let scales = nodes.filter { $0.isOp(QDQForms.clampOp) && $0.name.hasSuffix("/scale/" + QDQForms.clampOp) }
        #expect(nodes.contains { $0.isOp(QDQForms.absOp) } == (target == .qdq && policy != .O3), "\(label): max |x|")
        #expect(scales.count == (policy == .O3 ? 0 : 4), "\(label)")
        for max in scales {
            let scale = try #require(max.output(0))
            let m = try #require(PatternMatcher.match(QDQForms.dynamicScale(), value: scale), "\(label): \(max.name)")
            #expect(QDQForms.reduceAxes(m, default: []) != nil, "\(label): \(max.name)")
        }
        let postScales = nodes.filter { $0.isOp(QDQForms.postScaleOp) && $0.name.contains("/ApplyScale") }
        // fc's, proj's and out's Δ, and one Δ per operand of the scores.
        #expect(postScales.count == (target == .onnxruntime && policy != .O3 ? 5 : 0), "\(label)")
        // `scaledProduct` is a MatMul's (fc: the older Div form, x being read by the Gemm too;
        // out: quantized with Δ): proj's Gemm runs its scale-1 pair as a per-tensor int8 Gemm,
        // its Mul by Δ and bias Add as nodes.
        let scaledLinears = postScales.filter { PatternMatcher.match(QDQForms.scaledProduct, root: $0) != nil }
        #expect(scaledLinears.map(\.name) == postScales.filter { $0.name.hasPrefix("fc") || $0.name.hasPrefix("out") }.map(\.name),
                "\(label)")

        let plan = try ExecutionPlan(model: model)
        let computed = Set(plan.computedValueNames)
        let floatSteps = nodes.filter { $0.isOp(QDQForms.quantizeOp) || $0.isOp(QDQForms.dequantizeOp) }
            .compactMap { $0.output(0)?.name }.filter(computed.contains)
        #expect(floatSteps.isEmpty, "\(label): Q/DQ run as float steps: \(floatSteps)")
        // The onnxruntime dynamic form of the scores has no weight: its scale-1 pairs run as a
        // per-tensor batched int8 product, the Divs and Muls by Δ as nodes.
        let kinds = plan.stepInfos.map(\.kind).filter { $0.contains("int8") }
        #expect(kinds.count == 4, "\(label): \(kinds)")
    }

    /// dont_: zero points other than int8 0 or uint8 128 on both, and Q/DQ scales that differ,
    /// are not the symmetric forms (the pair then runs as nodes).
    @Test(arguments: QuantTarget.allCases)
    func otherZeroPointsAndScalesAreNotMatched(_ target: QuantTarget) throws {
        let model = try Self.quantized(.O3, target, .perTensor)
        let graph = model.graph
        let dq = try #require(graph.nodes.first { $0.isOp(QDQForms.dequantizeOp) && $0.input(0)?.constant == nil })
        let q = try #require(dq.input(0)?.producer)
        let out = try #require(dq.output(0))
        #expect(PatternMatcher.match(QDQForms.activation(), value: out) != nil)
        let (zeroPoint, scale) = (q.input(2), q.input(1))
        for other in [Tensor(scalar: Int8(1)), Tensor(scalar: UInt8(127))] {
            let shifted = graph.addInitializer(other, name: graph.uniqueName("zp"))
            q.setInput(2, shifted)
            dq.setInput(2, shifted)
            #expect(PatternMatcher.match(QDQForms.activation(), value: out) == nil, "\(target): zero point \(other)")
        }
        q.setInput(2, zeroPoint)
        dq.setInput(2, zeroPoint)
        dq.setInput(1, graph.addInitializer(Tensor(scalar: Float(0.5)), name: graph.uniqueName("scale")))
        let plan = try ExecutionPlan(model: model)
        #expect(plan.computedValueNames.contains(out.name), "\(target): a pair with two scales is lowered")
        dq.setInput(1, scale)
    }
}
