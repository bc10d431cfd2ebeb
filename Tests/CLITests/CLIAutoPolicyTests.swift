import Foundation
import Testing

/// `quantize{policy=auto}` and `quantize{calibration=…}` from the command line: the per-layer
/// report (text and --json), and a budget no plan meets (exit 1, the closest plan named,
/// nothing written).
@Suite struct CLIAutoPolicyTests {
    @Test func autoPolicyReportsEveryLayer() throws {
        let dir = try CLI.copyModel("tiny-llama")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/auto.onnx"
        let result = try CLI.run(["--passes", "calibrate,smooth,quantize{policy=auto,calibration=mse,budget=0.05}",
                                  "--calib", dir + "/samples", dir + "/model.onnx", "-o", out, "--json"])
        try #require(result.status == 0, "\(result)")
        #expect(FileManager.default.fileExists(atPath: out))
        let json = try CLI.json(result.stdout)
        let auto = try #require(json["autoPolicy"] as? [String: Any], "\(result.stdout)")
        let layers = try #require(auto["layers"] as? [[String: Any]])
        #expect(layers.count == 15)  // every linear, the LM head included (lm-head=true, the default)
        for layer in layers {
            #expect(["O3", "O1", "float"].contains(layer["form"] as? String ?? ""))
            #expect(!(layer["reason"] as? String ?? "").isEmpty)
        }
        #expect((auto["measured"] as? Double ?? 1) <= 0.05)
        #expect(auto["metric"] as? String == "kl")

        let text = try CLI.run(["--passes", "calibrate,smooth,quantize{policy=auto,calibration=mse,budget=0.05}",
                                "--calib", dir + "/samples", dir + "/model.onnx", "-o", dir + "/auto2.onnx"])
        try #require(text.status == 0, "\(text)")
        #expect(text.stdout.contains("policy=auto: "))
        #expect(text.stdout.contains("/model/layers.0/mlp/down_proj/MatMul"))
        // Deterministic: the same inputs write the same bytes.
        #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == Data(contentsOf: URL(fileURLWithPath: dir + "/auto2.onnx")))
    }

    /// A mixed plan (some layers O3, some O1, maybe float) is ordinary per-layer Q/DQ in both
    /// ONNX forms: onnxruntime loads and runs each file, and agrees with sqopt's interpreter.
    static let ortCheck = """
        import sys, json, numpy as np, onnx, onnxruntime as ort
        from onnx import numpy_helper
        model, data, npy = sys.argv[1:4]
        x = numpy_helper.to_array(onnx.load_tensor(data + "/input_0.pb"))
        sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        got = sess.run(None, {name: x})[0].astype(np.float64)
        ref = np.load(npy).astype(np.float64)
        ops = sorted({n.op_type for n in onnx.load(model).graph.node})
        print(json.dumps({"rel": float(np.linalg.norm(got - ref) / np.linalg.norm(ref)), "ops": ops}))
        """

    @Test(arguments: ["onnxruntime", "qdq"])
    func mixedPlanRunsInOnnxruntime(_ target: String) throws {
        let dir = try CLI.copyModel("tiny-llama")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/auto.onnx"
        let result = try CLI.run(["--passes", "calibrate,smooth,quantize{policy=auto,budget=0.05,target=\(target)}",
                                  "--calib", dir + "/samples", dir + "/model.onnx", "-o", out, "--json"])
        try #require(result.status == 0, "\(result)")
        let auto = try #require(try CLI.json(result.stdout)["autoPolicy"] as? [String: Any])
        let forms = Set((auto["layers"] as? [[String: Any]] ?? []).compactMap { $0["form"] as? String })
        #expect(forms.contains("O3") && forms.contains("O1"), "not a mixed plan: \(forms)")
        let run = try CLI.run(["run", out, "--data", dir + "/test_data_set_0", "--output-dir", dir + "/run"])
        try #require(run.status == 0, "\(run)")
        let check = try CLI.json(try CLI.runPython(Self.ortCheck, [out, dir + "/test_data_set_0", dir + "/run/logits.npy"]))
        #expect((check["rel"] as? Double ?? 1) < 1e-3, "\(check)")
        #expect((check["ops"] as? [String] ?? []).contains("QuantizeLinear"))
    }

    @Test func unmeetableBudgetWritesNothing() throws {
        let dir = try CLI.copyModel("tiny-llama")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/auto.onnx"
        let result = try CLI.run(["--passes", "calibrate,quantize{policy=auto,metric=kl,budget=0}",
                                  "--calib", dir + "/samples", dir + "/model.onnx", "-o", out])
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.contains("no plan meets the budget kl ≤ 0.0"), "\(result)")
        #expect(result.stderr.contains("the closest, plan "), "\(result)")
        #expect(result.stderr.contains(" float) reaches kl "), "\(result)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test func staticCalibrationNeedsSamples() throws {
        let dir = try CLI.copyModel("tiny-llama")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let stats = dir + "/stats.json"
        let saved = try CLI.run(["--passes", "calibrate", "--calib", dir + "/samples", dir + "/model.onnx",
                                 "-o", dir + "/same.onnx", "--save-calib", stats, "--allow-noop"])
        try #require(saved.status == 0, "\(saved)")
        let result = try CLI.run(["--passes", "quantize{policy=O3,calibration=mse}", "--load-calib", stats,
                                  dir + "/model.onnx", "-o", dir + "/out.onnx"])
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.contains("quantize{calibration=mse} needs the calibration samples"), "\(result)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out.onnx"))
    }
}
