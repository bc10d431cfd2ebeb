import Foundation
import SQIR
import SQRuntime
import Testing
@testable import SQPasses

/// Smoothing folds into onnxruntime's Skip norms: only γ (and β) of the normalized output 0
/// change; the residual sum (output 3) feeds the next layer unchanged.
///
///   x, skip ─ SkipSimplifiedLayerNormalization(γ) ─┬ y ─┬─ MatMul q
///                                                  │    └─ MatMul k     (+ Add(y, 1) when `extraUse`)
///                                                  └ sum ─ Add(sum, x) ─ next
private func skipNormGraph(extraUse: Bool, layerNorm: Bool = false) -> SQTestGraph {
    let b = SQTestGraph()
    let x = b.input("x", [.symbolic("t"), .known(4)])
    let skip = b.input("skip", [.symbolic("t"), .known(4)])
    let gamma = b.constant("gamma", shape: [4], [1, 2, 0.5, -1])
    let inputs: [Value?] = layerNorm
        ? [x, skip, gamma, b.constant("beta", shape: [4], [0.1, -0.2, 0.3, 0]), b.constant("bias", shape: [4], [0.5, 0, 0, -0.5])]
        : [x, skip, gamma, b.constant("bias", shape: [4], [0.5, 0, 0, -0.5])]
    let op = layerNorm ? "SkipLayerNormalization" : "SkipSimplifiedLayerNormalization"
    let node = b.graph.makeNode(op, domain: "com.microsoft", name: "norm", inputs: inputs, outputCount: 1,
                                attributes: [Attribute("epsilon", .float(1e-6))])
    let sum = Value(name: "residual_sum")
    node.setOutput(3, sum)
    let y = node.output(0)
    for (i, name) in ["q", "k"].enumerated() {
        b.output(b.op("MatMul", name, [y, b.randomConstant("w_\(name)", shape: [4, 3], seed: UInt64(i + 7))]))
    }
    b.output(b.op("Add", "next", [sum, x]))
    if extraUse { b.output(b.op("Add", "other", [y, b.constant("one", shape: [1], [1])])) }
    return b
}

private func run(_ graph: Graph) throws -> [String: Tensor] {
    let model = Model(graph: graph, opsetImports: [OpsetImport(domain: "", version: 17), OpsetImport(domain: "com.microsoft", version: 1)])
    let x = Tensor(shape: [3, 4], values: [Float]([1, -2, 3, 0.5, 0, 0.25, 4, -4, 2, 2, -1, 8]))
    let skip = Tensor(shape: [3, 4], values: [Float]([0.5, 1, -1, 0, 3, -0.5, 0, 1, -2, 0, 1, 1]))
    return try ExecutionPlan(model: model).run(inputs: ["x": x, "skip": skip])
}

private func closeEnough(_ a: [String: Tensor], _ b: [String: Tensor]) -> Bool {
    guard a.keys.sorted() == b.keys.sorted() else { return false }
    for (name, t) in a {
        guard let u = b[name] else { return false }
        for (p, q) in zip(t.doubleValues(), u.doubleValues()) where abs(p - q) > 1e-5 * max(1, abs(q)) { return false }
    }
    return true
}

@Suite struct SmoothContribNormTests {
    @Test(arguments: [false, true])
    func skipNormFoldsIntoGamma(layerNorm: Bool) throws {
        let b = skipNormGraph(extraUse: false, layerNorm: layerNorm)
        let before = try run(b.graph)
        let groups = SmoothGroupFinder.groups(in: b.graph, includeHeads: true)
        #expect(groups.count == 1 && groups[0].isNormOutput)
        guard case .skipNorm(let norm)? = groups[0].foldTarget else { Issue.record("expected a Skip norm fold"); return }
        #expect(norm.name == "norm")
        var s = CalibrationStatistics(fingerprint: ModelFingerprint.of(b.graph))
        let y = try #require(norm.output(0)).name
        s[y] = sqStatistics(rows: [[8, 1, 0.5, 2], [-8, -1, -0.5, -2]])
        let (reports, skipped) = try Smoother(alpha: 0.5, includeHeads: true).run(on: b.graph, statistics: &s)
        #expect(skipped.isEmpty && reports.count == 1 && reports[0].foldedInto == "norm" && reports[0].mulNode == nil)
        let factors = zip(reports[0].channelAbsMaxBefore, reports[0].channelAbsMaxAfter).map { $0 / $1 }
        #expect(!factors.allSatisfy { abs($0 - 1) < 1e-6 })  // the test means something
        let gamma = sqFloats(try b.the("norm").input(2))
        for (g, (old, f)) in zip(gamma, zip([1, 2, 0.5, -1] as [Float], factors)) { #expect(abs(g - old / f) < 1e-6) }
        #expect(sqFloats(try b.the("norm").input(layerNorm ? 4 : 3)) == [0.5, 0, 0, -0.5])  // pre-norm bias unchanged
        if layerNorm {
            for (v, (old, f)) in zip(sqFloats(try b.the("norm").input(3)), zip([0.1, -0.2, 0.3, 0] as [Float], factors)) {
                #expect(abs(v - old / f) < 1e-6)
            }
        }
        #expect(!b.graph.nodes.contains { $0.opType == "Mul" })
        try Verifier().verify(b.graph)
        #expect(closeEnough(try run(b.graph), before))  // q, k, and the residual path: same numbers
    }

    @Test func dontFoldWhenTheNormalizedOutputHasAnotherUse() throws {
        let b = skipNormGraph(extraUse: true)
        let before = try run(b.graph)
        var s = CalibrationStatistics(fingerprint: ModelFingerprint.of(b.graph))
        let y = try #require(b.the("norm").output(0)).name
        s[y] = sqStatistics(rows: [[8, 1, 0.5, 2], [-8, -1, -0.5, -2]])
        let (reports, _) = try Smoother(alpha: 0.5, includeHeads: true).run(on: b.graph, statistics: &s)
        let report = try #require(reports.first)
        #expect(report.foldedInto == nil && report.mulNode != nil)
        #expect(report.foldRefusal?.contains("other") == true)
        #expect(sqFloats(try b.the("norm").input(2)) == [1, 2, 0.5, -1])
        #expect(closeEnough(try run(b.graph), before))
    }

    @Test func residualSumIsNotANormOutput() throws {
        let b = SQTestGraph()
        let x = b.input("x", [.symbolic("t"), .known(4)])
        let node = b.graph.makeNode("SkipSimplifiedLayerNormalization", domain: "com.microsoft", name: "norm",
                                    inputs: [x, x, b.constant("gamma", shape: [4], [1, 1, 1, 1])], outputCount: 1)
        let sum = Value(name: "sum")
        node.setOutput(3, sum)
        b.output(b.op("MatMul", "q", [sum, b.randomConstant("w", shape: [4, 2], seed: 3)]))
        #expect(!SmoothGroupFinder.isNormOutput(sum, channels: 4))
        #expect(SmoothGroupFinder.groups(in: b.graph, includeHeads: true).isEmpty)
    }
}

/// `com.microsoft::MatMulNBits` (a 4-bit weight-only linear) is never a linear layer to smooth
/// or quantize; a norm that also feeds one cannot take the fold (its weight cannot absorb s).
@Suite struct MatMulNBitsIsLeftAloneTests {
    @Test func notALinearAndBlocksTheFold() throws {
        let b = SQTestGraph()
        let x = b.input("x", [.symbolic("t"), .known(32)])
        let norm = b.op("SimplifiedLayerNormalization", "norm", [x, b.randomConstant("gamma", shape: [32], seed: 1)])
        let nbits = b.graph.makeNode("MatMulNBits", domain: "com.microsoft", name: "q_proj_4bit",
                                     inputs: [norm, b.graph.addInitializer(Tensor(shape: [8, 1, 16], values: [UInt8](repeating: 0x88, count: 128)), name: "B"),
                                              b.constant("scales", shape: [8], [Float](repeating: 0.1, count: 8))],
                                     attributes: [Attribute("K", .int(32)), Attribute("N", .int(8)), Attribute("bits", .int(4)),
                                                  Attribute("block_size", .int(32))])
        b.output(b.op("Relu", "r1", [nbits.output(0)]))
        b.output(b.op("Relu", "r2", [b.op("MatMul", "k_proj", [norm, b.randomConstant("wk", shape: [32, 8], seed: 2)])]))
        #expect(LinearLayer(nbits) == nil)
        let groups = SmoothGroupFinder.groups(in: b.graph)
        #expect(groups.count == 1 && groups[0].layers.map(\.node.name) == ["k_proj"])
        #expect(groups[0].foldTarget == nil)
        #expect(groups[0].foldRefusal?.contains("q_proj_4bit") == true)
    }
}
