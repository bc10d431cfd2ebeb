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
    @Test(arguments: [(37, 37, [1, 1, 37, 37], 0, false), (70, 70, [2, 1, 70, 70], 5, true),
                      (5, 69, [1, 1, 5, 69], 0, false), (16, 16, [16], 0, false)])
    func maskedAttentionSkipsTheMaskedColumns(t: Int, s: Int, maskShape: [Int], padding: Int, fullRow: Bool) throws {
        let g = TestGraph()
        let (b, h, d) = (2, 3, 8)
        let q = g.input("q", .float, [b, h, t, d].map { .known($0) })
        let kt = g.input("kt", .float, [b, h, d, s].map { .known($0) })
        let v = g.input("v", .float, [b, h, s, d].map { .known($0) })
        let mask = g.input("mask", .float, maskShape.map { .known($0) })
        let scores = g.op("MatMul", [q, kt], name: "attn/MatMul")
        let div = g.op("Div", [scores, g.constant("c", Tensor(scalar: Float(d).squareRoot()))], name: "attn/Div")
        let add = g.op("Add", [div, mask], name: "attn/Add")
        let p = g.op("Softmax", [add], name: "attn/Softmax", attributes: [Attribute("axis", .int(-1))])
        g.output(g.op("MatMul", [p, v], name: "attn/MatMul_1"))
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
        #expect(reference == 5)
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
