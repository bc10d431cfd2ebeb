import Foundation
import SQDriver
import SQIR
import Testing
@testable import SQPasses

/// `quantize{policy=auto}`: per-layer forms chosen against a budget, on models whose answer is
/// known (one planted massive-activation channel) and on tiny-llama.
@Suite struct AutoPolicyTests {
    /// `y = MatMul(Relu(MatMul(x, W1)), W2) + MatMul(xm, W3)`: `xm` has, in token 0 of every
    /// sample, channel 5 at 2000 (a massive activation, as in SmolLM2's down_proj inputs);
    /// everything else is standard normal. A static per-tensor scale for `xm` (Δ ≈ 16) rounds
    /// every other token of it to 0; per-token scales keep them.
    static func plantedModel() -> (Model, InMemorySamples) {
        let t = SQTestGraph()
        let dims: [Dim] = [.known(1), .known(8), .known(16)]
        let x = t.input("x", dims)
        let xm = t.input("xm", dims)
        let a = t.op("MatMul", "l1", [x, t.randomConstant("w1", shape: [16, 16], seed: 1, scale: 0.5)])
        let r = t.op("Relu", "relu", [a])
        let b = t.op("MatMul", "l2", [r, t.randomConstant("w2", shape: [16, 16], seed: 2, scale: 0.5)])
        let c = t.op("MatMul", "l3", [xm, t.randomConstant("w3", shape: [16, 16], seed: 3, scale: 0.5)])
        t.output(t.op("Add", "sum", [b, c]))
        var rng = SplitMix64(seed: 14)
        func normal() -> Float {
            let u1 = Swift.max(Double(rng.next() >> 11) / Double(1 << 53), 1e-300)
            let u2 = Double(rng.next() >> 11) / Double(1 << 53)
            return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
        }
        var samples: [CalibrationSample] = []
        for _ in 0..<4 {
            let xs = (0..<128).map { _ in normal() }
            var ms = (0..<128).map { _ in normal() }
            ms[5] = 2000
            samples.append(["x": Tensor(shape: [1, 8, 16], values: xs), "xm": Tensor(shape: [1, 8, 16], values: ms)])
        }
        return (t.model, InMemorySamples(samples))
    }

    /// What a pass manager runs before `quantize` on an older model (its opset requirement).
    static func upgrade(_ model: Model, _ context: PassContext) throws {
        _ = try UpgradeOpset(options: PassOptions().setting(UpgradeOpset.to, Quantize.opset)).run(on: model, context: context)
    }

    /// Runs `calibrate` then `quantize{policy=auto,…}`; returns the report.
    static func auto(_ model: Model, _ samples: any CalibrationSampleSource, metric: AutoMetric,
                     budget: Double, calibration: StaticCalibration = .minmax) throws -> AutoPolicyReport {
        let context = PassContext()
        context[CalibrationSamplesKey.self] = samples
        _ = try Calibrate(options: PassOptions()).run(on: model, context: context)
        try upgrade(model, context)
        let options = PassOptions().setting(Quantize.policyOption, .auto).setting(Quantize.metricOption, metric)
            .setting(Quantize.budgetOption, .value(budget)).setting(Quantize.calibrationOption, calibration)
        _ = try Quantize(options: options).run(on: model, context: context)
        return try #require(context[AutoPolicyReportKey.self])
    }

    @Test func massiveActivationLayerIsNotStatic() throws {
        let (model, samples) = Self.plantedModel()
        let report = try Self.auto(model, samples, metric: .cosine, budget: 0.999)
        let forms = Dictionary(uniqueKeysWithValues: report.layers.map { ($0.node, $0.form) })
        #expect(forms["l1"] == .perTensorStatic && forms["l2"] == .perTensorStatic, "\(report.text)")
        #expect(forms["l3"] == .perToken || forms["l3"] == .float, "\(report.text)")
        #expect(report.measured >= 0.999)
        // The massive layer's static error is the largest by far: it was demoted first.
        let errors = Dictionary(uniqueKeysWithValues: report.layers.map { ($0.node, $0.staticError) })
        #expect((errors["l3"] ?? 0) > 100 * max(errors["l1"] ?? 1, errors["l2"] ?? 1), "\(report.text)")
        // The written graph (target=onnxruntime): x is quantized with a constant scale, xm per
        // token with its run-time Δ (a blocked Q whose zero point is Expand(128, Shape(Δ))).
        let quantizers = model.graph.nodes.filter { $0.isOp("QuantizeLinear") }
        #expect(quantizers.contains { $0.input(0)?.name == "x" && $0.input(1)?.constant != nil })
        #expect(quantizers.contains { $0.input(0)?.name == "xm" && ($0.int("block_size") ?? 0) > 0
                && $0.input(2)?.producer?.isOp("Expand") == true })
    }

    @Test func sameInputsGiveTheSamePlan() throws {
        let (m1, s1) = Self.plantedModel()
        let (m2, s2) = Self.plantedModel()
        let a = try Self.auto(m1, s1, metric: .cosine, budget: 0.9999)
        let b = try Self.auto(m2, s2, metric: .cosine, budget: 0.9999)
        #expect(a == b)
    }

    /// Tightening the budget moves layers towards float, never back, and the measured metric
    /// never gets worse.
    @Test(arguments: ["tiny-llama", "tiny-opt"])
    func tighterBudgetNeverGivesALessAccuratePlan(_ name: String) throws {
        var previous: AutoPolicyReport?
        for budget in [0.3, 0.1, 0.03, 0.01, 0.003, 0.001] {
            let model = try SmoothQuantFixtures.load(SmoothQuantFixtures.model(name))
            let samples = try CalibrationDirectory(path: SmoothQuantFixtures.modelDir(name) + "/samples",
                                                   graphInputs: model.graph.inputs)
            let report = try Self.auto(model, samples, metric: .kl, budget: budget)
            #expect(report.measured <= budget)
            if let previous {
                #expect(report.measured <= previous.measured, "budget \(budget): \(report.measured) after \(previous.measured)")
                let before = previous.layers.filter { $0.form == .perTensorStatic }.count
                let now = report.layers.filter { $0.form == .perTensorStatic }.count
                #expect(now <= before, "budget \(budget): \(now) static layers after \(before)")
                #expect(report.staticMACFraction <= previous.staticMACFraction)
            }
            previous = report
        }
    }

    @Test func holdoutMeasuresTheBudgetOnTheLastSamples() throws {
        let (model, samples) = Self.plantedModel()
        let context = PassContext()
        context[CalibrationSamplesKey.self] = samples
        _ = try Calibrate(options: PassOptions()).run(on: model, context: context)
        try Self.upgrade(model, context)
        let options = PassOptions().setting(Quantize.policyOption, .auto).setting(Quantize.metricOption, .cosine)
            .setting(Quantize.budgetOption, .value(0.999)).setting(Quantize.holdoutOption, 1)
        _ = try Quantize(options: options).run(on: model, context: context)
        let report = try #require(context[AutoPolicyReportKey.self])
        #expect(report.sensitivitySamples == 3 && report.evaluationSamples == 1)
        #expect(report.measured >= 0.999)
    }

    @Test func unmeetableBudgetNamesTheClosestPlan() throws {
        let (model, samples) = Self.plantedModel()
        #expect {
            _ = try Self.auto(model, samples, metric: .kl, budget: 0)
        } throws: { error in
            let text = "\(error)"
            return text.contains("no plan meets the budget kl ≤ 0.0") && text.contains("the closest, plan ")
                && text.contains("nothing was written")
        }
    }
}
