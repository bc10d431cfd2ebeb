import Foundation
import Testing

/// `sqopt inspect` and `sqopt run` on every models/ model, checked against the ONNX file
/// (read by the onnx Python package) and against onnxruntime's outputs in test_data_set_0.
@Suite struct CLIInspectRunTests {
    /// The model's facts as the onnx package reads them.
    static let onnxFacts = """
        import collections, json, sys, onnx
        m = onnx.load(sys.argv[1])
        inits = {i.name for i in m.graph.initializer}
        print(json.dumps({
            "ops": collections.Counter(n.op_type for n in m.graph.node),
            "nodes": len(m.graph.node),
            "inputs": [i.name for i in m.graph.input if i.name not in inits],
            "outputs": [o.name for o in m.graph.output],
            "opset": max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")),
            "ir_version": m.ir_version,
            "parameters": sum(int(__import__("numpy").prod(i.dims)) for i in m.graph.initializer),
        }))
        """

    @Test(arguments: CLI.models)
    func inspectMatchesTheONNXFile(_ name: String) throws {
        let model = CLI.path("models/\(name)/model.onnx")
        let result = try CLI.run(["inspect", model, "--json"])
        #expect(result.status == 0, "\(result)")
        let summary = try CLI.json(result.stdout)
        let facts = try CLI.json(try CLI.runPython(Self.onnxFacts, [model]))

        let ops = try #require(summary["ops"] as? [String: Int])
        #expect(ops == facts["ops"] as? [String: Int], "op histogram differs from onnx's:\n\(ops)\n\(facts["ops"] ?? "")")
        #expect(summary["nodeCount"] as? Int == facts["nodes"] as? Int)
        #expect(summary["irVersion"] as? Int == facts["ir_version"] as? Int)
        #expect((summary["opsets"] as? [String: Int])?["ai.onnx"] == facts["opset"] as? Int)
        let inputs = (summary["inputs"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        #expect(inputs == facts["inputs"] as? [String])
        let outputs = (summary["outputs"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        #expect(outputs == facts["outputs"] as? [String])
        let parameters = (summary["parameters"] as? [[String: Any]])?.compactMap { $0["elements"] as? Int }.reduce(0, +)
        #expect(parameters == facts["parameters"] as? Int)
    }

    /// Hard facts from models/README.md: fp32, opset 17, IR 8, 2 layers.
    @Test func inspectTextShowsTheREADMEFacts() throws {
        let result = try CLI.run(["inspect", "models/tiny-llama/model.onnx"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("ir_version: 8"), "\(result)")
        #expect(result.stdout.contains("ai.onnx 17"), "\(result)")
        #expect(result.stdout.contains("input_ids: "), "\(result)")
        #expect(result.stdout.contains("logits: "), "\(result)")
        let bert = try CLI.run(["inspect", "models/tiny-bert/model.onnx"]).stdout
        #expect(bert.contains("attention_mask: "))
        #expect(bert.contains("last_hidden_state: "))
        // tiny-bert: 2 block LayerNormalizations per layer + the embedding LN is decomposed.
        #expect(bert.range(of: #"LayerNormalization\s+4\n"#, options: .regularExpression) != nil, "\(bert)")
    }

    /// Compares OUT_DIR/<output>.npy with test_data_set_0/output_N.pb (onnxruntime's numbers):
    /// prints the worst relative error max|a-b| / max|b| over outputs.
    static let compareOutputs = """
        import json, os, sys, numpy as np, onnx
        from onnx import numpy_helper
        model, data, out = sys.argv[1:4]
        m = onnx.load(model)
        worst = 0.0
        for k, o in enumerate(m.graph.output):
            ref = numpy_helper.to_array(onnx.load_tensor(os.path.join(data, f"output_{k}.pb")))
            got = np.load(os.path.join(out, o.name + ".npy"))
            assert got.shape == ref.shape, (o.name, got.shape, ref.shape)
            assert got.dtype == ref.dtype, (o.name, got.dtype, ref.dtype)
            worst = max(worst, float(np.abs(got.astype(np.float64) - ref).max() / max(np.abs(ref).max(), 1e-30)))
        print(json.dumps({"relative": worst}))
        """

    @Test(arguments: CLI.models)
    func runMatchesOnnxruntime(_ name: String) throws {
        let out = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: out) }
        let model = CLI.path("models/\(name)/model.onnx"), data = CLI.path("models/\(name)/test_data_set_0")
        let result = try CLI.run(["run", model, "--data", data, "--output-dir", out])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("ran "), "\(result)")
        let check = try CLI.json(try CLI.runPython(Self.compareOutputs, [model, data, out]))
        let relative = try #require(check["relative"] as? Double)
        #expect(relative <= 1e-4, "\(name): sqopt run differs from onnxruntime by \(relative) (relative)")
    }

    /// `--input NAME=FILE` with .npy files gives the same outputs as `--data`.
    @Test func runWithNamedNpyInputs() throws {
        let out = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: out) }
        let model = CLI.path("models/tiny-bert/model.onnx")
        let samples = CLI.path("models/tiny-bert/samples/0")
        let result = try CLI.run(["run", model, "--input", "input_ids=\(samples)/input_ids.npy",
                                  "--input", "attention_mask=\(samples)/attention_mask.npy", "--output-dir", out, "--json"])
        #expect(result.status == 0, "\(result)")
        let rows = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]]
        #expect(rows?.first?["name"] as? String == "last_hidden_state", "\(result)")
        let check = try CLI.json(try CLI.runPython(Self.compareOutputs, [model, CLI.path("models/tiny-bert/test_data_set_0"), out]))
        #expect((check["relative"] as? Double ?? 1) <= 1e-4, "\(check)")

        let typo = try CLI.run(["run", model, "--input", "input_id=\(samples)/input_ids.npy", "--output-dir", out])
        #expect(typo.status == 1, "\(typo)")
        #expect(typo.stderr.contains("did you mean 'input_ids'?"), "\(typo)")
    }
}
