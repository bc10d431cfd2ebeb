import Foundation
import SQIR
import Testing
@testable import SQPasses

@Suite struct SmoothQuantFactorTests {
    @Test func formulaClampsAndDeadChannels() {
        let s = SmoothFactors.compute(activationAbsMax: [4, 0, 1, 1e-12, .infinity],
                                      weightAbsMax: [1, 2, 1e-7, 100, 1], alpha: 0.5)
        #expect(s[0] == 2)
        #expect(s[1] == 1)  // dead channel
        #expect(abs(s[2] - Float(1 / 1e-5.squareRoot())) < 1e-3)  // weight clamped to 1e-5
        #expect(s[3] == Float(1e-5))  // factor clamped
        #expect(s[4] == 1)  // non-finite range
        let alpha08 = SmoothFactors.compute(activationAbsMax: [16], weightAbsMax: [2], alpha: 0.8)
        #expect(abs(alpha08[0] - Float(pow(16.0, 0.8) / pow(2.0, 0.2))) < 1e-5)
    }
}

/// x → LayerNormalization(γ, β) → {q, k, v} MatMuls; optionally the LN output also feeds a
/// residual Add (post-LN BERT). The MatMuls are graph outputs, so tests include output heads.
private func layerNormGraph(residual: Bool) -> SQTestGraph {
    let b = SQTestGraph()
    let x = b.input("x", [.symbolic("t"), .known(4)])
    let gamma = b.constant("gamma", shape: [4], [1, 2, 3, 4])
    let beta = b.constant("beta", shape: [4], [0.5, -0.5, 0.25, 0])
    let ln = b.op("LayerNormalization", "ln", [x, gamma, beta], [Attribute("axis", .int(-1))])
    for (i, name) in ["q", "k", "v"].enumerated() {
        let w = b.randomConstant("w_\(name)", shape: [4, 3], seed: UInt64(i + 1))
        b.output(b.op("MatMul", name, [ln, w]))
    }
    if residual { b.output(b.op("Add", "residual", [ln, x])) }
    return b
}

private func stats(for graph: Graph, _ entries: [String: [Float]]) -> CalibrationStatistics {
    var s = CalibrationStatistics(fingerprint: ModelFingerprint.of(graph))
    for (name, absMax) in entries { s[name] = sqStatistics(rows: [absMax, absMax.map { -$0 }]) }
    return s
}

@Suite struct SmoothQuantSmoothTests {
    @Test func layerNormGroupFoldsIntoGammaAndBeta() throws {
        let b = layerNormGraph(residual: false)
        let groups = SmoothGroupFinder.groups(in: b.graph, includeHeads: true)
        #expect(groups.count == 1)
        #expect(groups[0].layers.map(\.node.name) == ["q", "k", "v"])
        guard case .layerNorm(let ln)? = groups[0].foldTarget else { Issue.record("expected a LayerNorm fold"); return }
        #expect(ln.name == "ln")

        let oldWeights = groups[0].layers.map { $0.weightTensor.elements(as: Float.self) }
        let originalGamma = b.graph.initializers.first { $0.name == "gamma" }
        let expected = Smoother.factors(for: groups[0], stats: sqStatistics(rows: [[8, 1, 0, 2], [-8, -1, 0, -2]]), alpha: 0.5)
        var s = stats(for: b.graph, ["ln_output": [8, 1, 0, 2]])
        let (reports, skipped) = try Smoother(alpha: 0.5, includeHeads: true).run(on: b.graph, statistics: &s)
        #expect(skipped.isEmpty)
        #expect(reports.count == 1 && reports[0].foldedInto == "ln" && reports[0].mulNode == nil)
        #expect(expected[2] == 1)  // dead channel
        let node = try b.the("ln")
        #expect(sqFloats(node.input(1)) == zip([1, 2, 3, 4] as [Float], expected).map { $0 / $1 })
        #expect(sqFloats(node.input(2)) == zip([0.5, -0.5, 0.25, 0] as [Float], expected).map { $0 / $1 })
        #expect(sqFloats(originalGamma) == [1, 2, 3, 4])  // the original tensor is untouched...
        #expect(!b.graph.initializers.contains { $0.name == "gamma" })  // ...and, unused, dropped
        for (i, name) in ["q", "k", "v"].enumerated() {
            let w = sqFloats(try b.the(name).input(1))
            for k in 0..<4 { for n in 0..<3 { #expect(w[k * 3 + n] == oldWeights[i][k * 3 + n] * expected[k]) } }
        }
        #expect(s["ln_output"]?.channelAbsMax == zip([8, 1, 0, 2] as [Float], expected).map { $0 / $1 })
        try Verifier().verify(b.graph)
    }

    @Test func postLayerNormGetsOneSharedMul() throws {
        let b = layerNormGraph(residual: true)
        var s = stats(for: b.graph, ["ln_output": [8, 1, 0.5, 2]])
        let (reports, _) = try Smoother(alpha: 0.5, includeHeads: true).run(on: b.graph, statistics: &s)
        #expect(reports.count == 1)
        let report = try #require(reports.first)
        #expect(report.foldedInto == nil)
        #expect(report.foldRefusal?.contains("residual") == true)
        let mul = try #require(b.graph.nodes.first { $0.name == report.mulNode })
        #expect(mul.opType == "Mul" && mul.input(0)?.name == "ln_output")
        for name in ["q", "k", "v"] { #expect(try b.the(name).input(0) === mul.output(0)) }
        #expect(try b.the("residual").input(0)?.name == "ln_output")
        #expect(sqFloats(try b.the("ln").input(1)) == [1, 2, 3, 4])  // norm unchanged
        let inverse = sqFloats(mul.input(1))
        let factors = zip(report.channelAbsMaxBefore, report.channelAbsMaxAfter).map { $0 / $1 }
        for (a, f) in zip(inverse, factors) { #expect(abs(a * f - 1) < 1e-6) }
        #expect(s[try #require(mul.output(0)).name] != nil)
        #expect(s["ln_output"]?.channelAbsMax == [8, 1, 0.5, 2])  // X itself is unchanged
        // The Mul comes before the first consumer.
        let order = b.graph.nodes.map(\.name)
        #expect(try #require(order.firstIndex(of: mul.name)) < (order.firstIndex(of: "q") ?? 0))
        try Verifier().verify(b.graph)
    }

    @Test func decomposedRMSNormTailFolds() throws {
        let b = SQTestGraph()
        let x = b.input("x", [.symbolic("t"), .known(2)])
        let normalized = b.op("Div", "div", [x, b.op("Sqrt", "sqrt", [x])])
        let gamma = b.constant("gamma", shape: [2], [2, 3])
        let y = b.op("Mul", "gamma_mul", [gamma, normalized])  // γ first, as SmolLM2 writes it
        b.output(b.op("MatMul", "gate", [y, b.constant("wg", shape: [2, 2], [1, 2, 3, 4])]))
        b.output(b.op("MatMul", "up", [y, b.constant("wu", shape: [2, 2], [4, 1, 1, 1])]))
        var s = stats(for: b.graph, ["gamma_mul_output": [4, 1]])
        let (reports, _) = try Smoother(alpha: 0.5, includeHeads: true).run(on: b.graph, statistics: &s)
        #expect(reports.first?.foldedInto == "gamma_mul")
        // s_j = sqrt(ax_j) / sqrt(max over both weights of |row j|): row 0 -> 4, row 1 -> 4.
        #expect(sqFloats(try b.the("gamma_mul").input(0)) == [2 / 1, 3 / 0.5])
        try Verifier().verify(b.graph)
    }

    @Test func decomposedLayerNormAddBetaFoldsBoth() throws {
        let b = SQTestGraph()
        let x = b.input("x", [.symbolic("t"), .known(2)])
        let scaled = b.op("Mul", "gamma_mul", [x, b.constant("gamma", shape: [2], [2, 2])])
        let shifted = b.op("Add", "beta_add", [scaled, b.constant("beta", shape: [1, 2], [1, -1])])
        b.output(b.op("MatMul", "fc1", [shifted, b.constant("w", shape: [2, 1], [1, 1])]))
        let groups = SmoothGroupFinder.groups(in: b.graph, includeHeads: true)
        guard case .scaleShift(let mul, 1, let add, 1)? = groups.first?.foldTarget else {
            Issue.record("expected a Mul+Add fold, got \(String(describing: groups.first?.foldTarget))"); return
        }
        #expect(mul.name == "gamma_mul" && add.name == "beta_add")
        var s = stats(for: b.graph, ["beta_add_output": [4, 1]])
        _ = try Smoother(alpha: 0.5, includeHeads: true).run(on: b.graph, statistics: &s)
        #expect(sqFloats(try b.the("gamma_mul").input(1)) == [1, 2])   // s = [2, 1]
        #expect(sqFloats(try b.the("beta_add").input(1)) == [0.5, -1])
        #expect(try b.the("beta_add").input(1)?.constant?.shape == [1, 2])
    }

    @Test func gemmTransBScalesColumns() throws {
        let b = SQTestGraph()
        let x = b.input("x", [.known(3), .known(2)])
        let y = b.op("LayerNormalization", "ln", [x, b.constant("g", shape: [2], [1, 1])])
        b.output(b.op("Gemm", "fc", [y, b.constant("w", shape: [3, 2], [1, 2, 3, 4, 5, 6])], [Attribute("transB", .int(1))]))
        let layer = try #require(LinearLayer(try b.the("fc")))
        #expect(layer.inputChannels == 2 && layer.outputChannels == 3 && layer.transposed)
        #expect(layer.inputChannelAbsMax() == [5, 6])
        #expect(layer.weightScalingInputChannels(by: [2, 10]).elements(as: Float.self) == [2, 20, 6, 40, 10, 60])
    }

    @Test func scopeNormsLeavesOtherLinearsAndScopeAllInsertsMul() throws {
        func graph() -> SQTestGraph {
            let b = SQTestGraph()
            let x = b.input("x", [.symbolic("t"), .known(2)])
            let r = b.op("Relu", "relu", [x])
            b.output(b.op("MatMul", "down", [r, b.constant("w", shape: [2, 2], [1, 0, 0, 1])]))
            return b
        }
        let norms = graph()
        #expect(SmoothGroupFinder.groups(in: norms.graph, scope: .norms, includeHeads: true).isEmpty)
        let all = graph()
        let groups = SmoothGroupFinder.groups(in: all.graph, scope: .all, includeHeads: true)
        #expect(groups.count == 1 && groups[0].foldTarget == nil && !groups[0].isNormOutput)
        var s = stats(for: all.graph, ["relu_output": [9, 1]])
        let (reports, _) = try Smoother(alpha: 0.5, scope: .all, includeHeads: true).run(on: all.graph, statistics: &s)
        #expect(reports.first?.mulNode != nil)
    }

    @Test func sharedWeightIsNeverMutatedAndMissingStatsAreSkipped() throws {
        let b = SQTestGraph()
        let x = b.input("x", [.symbolic("t"), .known(2)])
        let w = b.constant("shared", shape: [2, 2], [1, 2, 3, 4])
        let y1 = b.op("LayerNormalization", "ln1", [x, b.constant("g1", shape: [2], [1, 1])])
        let y2 = b.op("LayerNormalization", "ln2", [x, b.constant("g2", shape: [2], [1, 1])])
        b.output(b.op("MatMul", "a", [y1, w]))
        b.output(b.op("MatMul", "b", [y2, w]))
        var s = stats(for: b.graph, ["ln1_output": [4, 4]])
        let (reports, skipped) = try Smoother(alpha: 0.5, includeHeads: true).run(on: b.graph, statistics: &s)
        #expect(reports.map(\.activation) == ["ln1_output"])
        #expect(skipped.map(\.activation) == ["ln2_output"])
        #expect(sqFloats(w) == [1, 2, 3, 4])
        #expect(try b.the("b").input(1) === w)
        #expect(try b.the("a").input(1) !== w)
    }
}
