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
        #expect(layers.count == 14)  // every linear but the LM head
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
