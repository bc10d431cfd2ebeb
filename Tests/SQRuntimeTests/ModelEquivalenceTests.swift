import Foundation
import SQIR
import SQONNX
import SQRuntime
import Testing

/// Whole models through the interpreter against onnxruntime's outputs stored beside them
/// (`test_data_set_K/output_N.pb`, written by tools/make_models.py and the real-model
/// builders). The error figure is max |sqopt − ort| / max |ort| per output.
@Suite struct ModelEquivalenceTests {
    static let root = NodeTestData.repositoryRoot

    /// Runs every test_data_set_K of the model in `folder`; returns the worst relative error.
    static func check(_ folder: URL, tolerance: Double, label: String) throws -> Double {
        let modelURL = folder.appendingPathComponent("model.onnx")
        let started = Date()
        let model = try ONNXDecoder().decode(file: modelURL.path)
        let plan = try ExecutionPlan(model: model)
        let planned = Date()
        let sets = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasPrefix("test_data_set_") }.sorted()
        #expect(!sets.isEmpty, "no test_data_set_* in \(folder.path)")
        let initializers = Set(model.graph.initializers.map(\.name))
        let inputs = model.graph.inputs.filter { !initializers.contains($0.name) }
        var worst = 0.0
        var runSeconds = 0.0
        for set in sets {
            let dir = folder.appendingPathComponent(set)
            var feed: [String: Tensor] = [:]
            for (i, input) in inputs.enumerated() {
                feed[input.name] = try NodeTestData.decodeTensor(at: dir.appendingPathComponent("input_\(i).pb"))
            }
            let t0 = Date()
            let outputs = try plan.run(inputs: feed)
            runSeconds += Date().timeIntervalSince(t0)
            for (i, output) in model.graph.outputs.enumerated() {
                let want = try NodeTestData.decodeTensor(at: dir.appendingPathComponent("output_\(i).pb"))
                let got = try #require(outputs[output.name])
                #expect(got.shape == want.shape && got.dtype == want.dtype, "\(label) \(set) \(output.name): \(got.type) vs \(want.type)")
                let error = relativeError(got, want)
                worst = max(worst, error)
                #expect(error <= tolerance, "\(label) \(set) output '\(output.name)': relative error \(error) > \(tolerance)")
            }
        }
        print(String(format: "%@: max |sqopt-ort| / max |ort| = %.2e over %d data set(s); plan %.2f s, run %.3f s",
                     label, worst, sets.count, planned.timeIntervalSince(started), runSeconds))
        return worst
    }

    static func relativeError(_ a: Tensor, _ e: Tensor) -> Double {
        let x = a.doubleValues(), y = e.doubleValues()
        guard x.count == y.count, !y.isEmpty else { return x.count == y.count ? 0 : .infinity }
        var maxDiff = 0.0, maxRef = 0.0
        for i in 0..<y.count {
            maxDiff = max(maxDiff, abs(x[i] - y[i]))
            maxRef = max(maxRef, abs(y[i]))
        }
        if maxDiff.isNaN { return .infinity }
        return maxRef > 0 ? maxDiff / maxRef : maxDiff
    }

    @Test(arguments: ["tiny-opt", "tiny-llama", "tiny-bert"])
    func tinyModel(_ name: String) throws {
        _ = try Self.check(Self.root.appendingPathComponent("models/\(name)"), tolerance: 1e-5, label: name)
    }

    /// all-MiniLM-L6-v2 and SmolLM2-135M (all 30 layers), built by tools/test.sh into build/real.
    @Test(arguments: ["minilm", "smollm2"])
    func realModel(_ name: String) throws {
        let folder = Self.root.appendingPathComponent("build/real/\(name)")
        guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("model.onnx").path) else {
            Issue.record("build/real/\(name)/model.onnx is missing: run tools/test.sh (it builds the real models)")
            return
        }
        _ = try Self.check(folder, tolerance: 1e-4, label: name)
    }
}
