import Foundation
import Testing

/// The bare command `sqopt --passes smooth,quantize MODEL` (issue 9): implicit calibration on
/// the test_data_set_* beside the model, default output naming, refusals, summary variants.
/// Every test works on a copy of the model folder in a temporary directory.
@Suite struct CLIOptimizeTests {
    /// onnxruntime runs MODEL on DATA's inputs; prints the output shapes, whether they are
    /// finite, the cosine with the reference outputs, and the Q/DQ node counts.
    static let ortRun = """
        import json, os, sys, numpy as np, onnx, onnxruntime as ort
        from onnx import numpy_helper
        model, data = sys.argv[1:3]
        m = onnx.load(model)
        sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        feed = {n: numpy_helper.to_array(onnx.load_tensor(os.path.join(data, f"input_{k}.pb"))) for k, n in enumerate(names)}
        outs = sess.run(None, feed)
        cos = []
        for k, got in enumerate(outs):
            ref = numpy_helper.to_array(onnx.load_tensor(os.path.join(data, f"output_{k}.pb"))).ravel().astype(np.float64)
            g = got.ravel().astype(np.float64)
            cos.append(float(g @ ref / (np.linalg.norm(g) * np.linalg.norm(ref))))
        ops = [n.op_type for n in m.graph.node]
        print(json.dumps({"shapes": [list(o.shape) for o in outs], "finite": all(bool(np.isfinite(o).all()) for o in outs),
                          "cosine": cos, "quantize": ops.count("QuantizeLinear"), "dequantize": ops.count("DequantizeLinear"),
                          "opset": max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))}))
        """

    @Test(arguments: CLI.models)
    func bareCommandWritesAModelOnnxruntimeRuns(_ name: String) throws {
        let dir = try CLI.copyModel(name)
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let result = try CLI.run(["--passes", "smooth,quantize", dir + "/model.onnx"])
        #expect(result.status == 0, "\(result)")
        let output = dir + "/model.sq-w8a8.onnx"
        #expect(FileManager.default.fileExists(atPath: output), "\(result)")
        #expect(result.stderr.contains("running calibrate first"), "the implicit calibration is announced: \(result)")
        #expect(result.stdout.contains("pipeline: calibrate,smooth,quantize"), "\(result)")
        #expect(result.stdout.contains("wrote \(output)"), "\(result)")
        #expect(result.stdout.contains("model size: "), "\(result)")

        let check = try CLI.json(try CLI.runPython(Self.ortRun, [output, dir + "/test_data_set_0"]))
        #expect(check["finite"] as? Bool == true, "\(check)")
        #expect((check["quantize"] as? Int ?? 0) > 0, "no QuantizeLinear in the output: \(check)")
        #expect((check["dequantize"] as? Int ?? 0) > 0, "\(check)")
        #expect((check["opset"] as? Int ?? 0) >= 21, "\(check)")
        // W8A8 after SmoothQuant stays close to fp32 on these models (measured ≥ 0.99; 0.95 = broken).
        for cosine in check["cosine"] as? [Double] ?? [] {
            #expect(cosine > 0.95, "\(name): onnxruntime output of the W8A8 model vs fp32: cosine \(cosine)")
        }
    }

    /// int8 weights make the file smaller: the float weights they replace (and smoothing's
    /// intermediate copies) must not stay behind as unused initializers.
    @Test(arguments: CLI.models)
    func bareCommandOutputIsSmallerThanTheInput(_ name: String) throws {
        let dir = try CLI.copyModel(name)
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let result = try CLI.run(["--passes", "smooth,quantize", dir + "/model.onnx", "--json"])
        #expect(result.status == 0, "\(result)")
        let summary = try CLI.json(result.stdout)
        let before = summary["bytesBefore"] as? Int ?? 0, after = summary["bytesAfter"] as? Int ?? 0
        #expect(after > 0 && after < before, "\(name): W8A8 model \(after) bytes, fp32 input \(before) bytes")
    }

    @Test func missingCalibrationDataGivesTheGuidingError() throws {
        let dir = try CLI.copyModel("tiny-llama", includeData: false)
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let result = try CLI.run(["--passes", "smooth,quantize", dir + "/model.onnx"])
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.contains("\nerror: calibration data needed but none found"), "\(result)")
        for hint in ["--calib DIR", "test_data_set_*", "--load-calib"] {
            #expect(result.stderr.contains(hint), "the error should mention \(hint): \(result)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/model.sq-w8a8.onnx"))

        // Policies without statistics need no data: O1 quantizes without calibration.
        let o1 = try CLI.run(["--passes", "quantize{policy=O1}", dir + "/model.onnx", "--quiet"])
        #expect(o1.status == 0, "\(o1)")
        #expect(FileManager.default.fileExists(atPath: dir + "/model.sq-w8a8.onnx"))
    }

    @Test func explicitCalibDirectoryIsUsed() throws {
        let dir = try CLI.copyModel("tiny-opt", includeData: false)
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let result = try CLI.run(["--passes", "calibrate,smooth{alpha=0.5},quantize{policy=O3}", "--calib",
                                  CLI.path("models/tiny-opt/samples"), dir + "/model.onnx", "-o", dir + "/out.onnx"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("samples=4"), "all four .npy samples were used: \(result)")
        #expect(FileManager.default.fileExists(atPath: dir + "/out.onnx"))
    }

    @Test func existingOutputIsRefusedWithoutForce() throws {
        let dir = try CLI.copyModel("tiny-opt")
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let args = ["--passes", "smooth,quantize", dir + "/model.onnx", "--quiet"]
        #expect(try CLI.run(args).status == 0)
        let output = dir + "/model.sq-w8a8.onnx"
        let before = try Data(contentsOf: URL(fileURLWithPath: output))
        try Data("sentinel".utf8).write(to: URL(fileURLWithPath: output))
        let refused = try CLI.run(args)
        #expect(refused.status == 1, "\(refused)")
        #expect(refused.stderr.contains("exists; pass --force"), "\(refused)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: output)) == Data("sentinel".utf8), "refused, yet the file changed")
        let forced = try CLI.run(args + ["--force"])
        #expect(forced.status == 0, "\(forced)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: output)) == before, "same inputs, same bytes")
    }

    @Test func outputEqualToInputIsRefused() throws {
        let dir = try CLI.copyModel("tiny-opt")
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let model = dir + "/model.onnx"
        let original = try Data(contentsOf: URL(fileURLWithPath: model))
        for output in [model, dir + "/./model.onnx"] {
            let result = try CLI.run(["--passes", "smooth,quantize", model, "-o", output, "--force"])
            #expect(result.status == 2, "\(result)")
            #expect(result.stderr.contains("is the input model"), "\(result)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: model)) == original)
    }

    /// The default output name says what was done (docs/cli.md, "Output naming").
    @Test func defaultOutputNaming() throws {
        let dir = try CLI.copyModel("tiny-llama")
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let cases = [("quantize{policy=O1}", "model.sq-w8a8.onnx"), ("smooth", "model.sq-smooth.onnx"),
                     ("canonicalize-norms,dce", "model.sq-opt.onnx")]
        for (pipeline, file) in cases {
            let result = try CLI.run(["--passes", pipeline, dir + "/model.onnx", "--quiet"])
            #expect(result.status == 0, "\(result)")
            #expect(result.stdout.isEmpty, "--quiet prints nothing: \(result)")
            #expect(FileManager.default.fileExists(atPath: dir + "/" + file), "\(pipeline) should write \(file)")
        }
    }

    @Test func jsonSummaryParses() throws {
        let dir = try CLI.copyModel("tiny-bert")
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let result = try CLI.run(["--passes", "smooth,quantize", dir + "/model.onnx", "--json"])
        #expect(result.status == 0, "\(result)")
        let summary = try CLI.json(result.stdout)
        #expect(summary["output"] as? String == dir + "/model.sq-w8a8.onnx")
        #expect(summary["pipeline"] as? String == "calibrate,smooth,quantize")
        let passes = summary["passes"] as? [[String: Any]] ?? []
        // upgrade-opset: the step the pass manager runs for quantize's opset 21 (the model has 17).
        #expect(passes.map { $0["pass"] as? String } == ["calibrate", "smooth", "upgrade-opset", "quantize"])
        #expect(passes.map { $0["requiredBy"] as? String } == [nil, nil, "quantize", nil])
        let quantize = passes.last?["counters"] as? [String: Int]
        #expect((quantize?["linears"] ?? 0) > 0, "\(summary)")
        // post-LN BERT: smoothing must use Mul(1/s), not fold into the norms (models/README.md).
        let smooth = passes.dropFirst().first?["counters"] as? [String: Int]
        #expect((smooth?["muls"] ?? 0) > 0, "\(summary)")
        #expect((summary["bytesBefore"] as? Int ?? 0) > 0)
    }
}
