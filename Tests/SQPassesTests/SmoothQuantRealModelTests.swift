import Foundation
import SQDriver
import SQIR
import SQONNX
import SQRuntime
import Testing
@testable import SQPasses

/// calibrate + smooth on the real models built by tools/build_minilm.py and
/// tools/build_smollm2.py (build/real/…; skipped when absent): the fp32 function is unchanged
/// (interpreter and onnxruntime), SmolLM2's norm→linear groups all fold into the RMSNorm
/// weights, and none of MiniLM's (post-LN) may.
@Suite(.serialized)
struct SmoothQuantRealModelTests {
    struct Case: Sendable, CustomStringConvertible {
        let name: String
        var scope: SmoothScope = .norms
        let groups: Int
        let folded: Int
        var description: String { "\(name) scope=\(scope.rawValue)" }
    }

    // SmolLM2's counts include the LM head's group (its input, the final RMSNorm, folds).
    static let cases = [
        Case(name: "minilm", groups: 12, folded: 0),
        Case(name: "smollm2", groups: 61, folded: 61),
        // The default: also down_proj, folded into up_proj's output channels; no Mul.
        Case(name: "smollm2", scope: .foldable, groups: 91, folded: 91),
        // Every linear: o_proj gets a Mul as well.
        Case(name: "smollm2", scope: .all, groups: 121, folded: 91),
        // MiniLM (post-LN) has nothing foldable beyond its norms: the default is scope=norms.
        Case(name: "minilm", scope: .foldable, groups: 12, folded: 0),
    ]

    static func relativeL2(_ a: Tensor, _ b: Tensor) -> Double {
        var diff = 0.0, norm = 0.0
        for (x, y) in zip(a.elements(as: Float.self), b.elements(as: Float.self)) {
            diff += Double(x - y) * Double(x - y)
            norm += Double(y) * Double(y)
        }
        return (diff / max(norm, 1e-30)).squareRoot()
    }

    @Test(arguments: cases)
    func smoothingKeepsTheFunction(_ c: Case) throws {
        guard SmoothQuantFixtures.hasReal(c.name) else { return }
        let folder = SmoothQuantFixtures.real(c.name)
        let original = try SmoothQuantFixtures.load(folder + "/model.onnx")
        let model = try SmoothQuantFixtures.load(folder + "/model.onnx")
        let samples = try CalibrationDirectory(path: folder + "/calib-npy", graphInputs: model.graph.inputs)
        let clock = ContinuousClock()
        let start = clock.now
        var stats = try Calibrator(percentile: nil, maxSamples: c.name == "smollm2" ? 4 : nil, rowsPerValue: 0).calibrate(
            graph: model.graph, samples: samples, run: try InterpreterRunner.make(model))
        let calibrated = clock.now
        let (reports, skipped) = try Smoother(alpha: 0.5, scope: c.scope).run(on: model.graph, statistics: &stats)
        #expect(skipped.isEmpty)
        #expect(reports.count == c.groups)
        #expect(reports.filter(\.folded).count == c.folded)
        try Verifier().verify(model)
        let outlierBefore = reports.map { ($0.channelAbsMaxBefore.max() ?? 0) }.max() ?? 0
        let outlierAfter = reports.map { ($0.channelAbsMaxAfter.max() ?? 0) }.max() ?? 0
        print("\(c): calibrated \(stats.samples) samples in \(calibrated - start); \(reports.count) groups, \(reports.filter(\.folded).count) folded; largest channel max |X| \(outlierBefore) -> \(outlierAfter)")

        // Interpreter: original vs smoothed on the sample beside the model.
        let check = try CalibrationDirectory(path: folder + "/calib-npy", graphInputs: model.graph.inputs)
        let before = try ExecutionPlan(model: original).run(inputs: try check.sample(at: 0))
        let after = try ExecutionPlan(model: model).run(inputs: try check.sample(at: 0))
        for (name, t) in before {
            let rel = Self.relativeL2(try #require(after[name]), t)
            #expect(rel <= 1e-4, "\(c.name) \(name): relative L2 \(rel)")
            print("\(c) \(name): interpreter, smoothed vs original relative L2 \(rel)")
        }

        // onnxruntime on the written file vs the original.
        guard SmoothQuantFixtures.hasPython else { return }
        let dir = try SmoothQuantFixtures.temporaryDirectory()
        defer { SmoothQuantFixtures.cleanUp(dir) }
        try SmoothQuantFixtures.write(model, to: dir + "/smoothed.onnx")
        let (status, output) = try SmoothQuantFixtures.runTool("fakequant_reference.py",
            ["run", folder + "/model.onnx", "--calib", folder + "/test_data_set_0", "--data", folder + "/test_data_set_0",
             "--policy", "fp32", "--no-smooth", "--compare", dir + "/smoothed.onnx", "--rtol", "1e-4"])
        #expect(status == 0, "\(output)")
        print("\(c): onnxruntime, smoothed vs original: \(output.split(separator: "\n").last ?? "")")
    }
}
