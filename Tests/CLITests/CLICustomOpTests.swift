import Foundation
import Testing

/// A custom op (`com.example::FancyOp`) between two linears: `inspect` lists it, `quantize`
/// (dynamic O1: no calibration needed) quantizes around it and keeps it as it was, and
/// calibration names the node it cannot run.
@Suite struct CLICustomOpTests {
    static let makeModel = """
        import sys, numpy as np, onnx
        from onnx import helper, TensorProto, numpy_helper
        rng = np.random.default_rng(0)
        w = [numpy_helper.from_array(rng.standard_normal((8, 8)).astype(np.float32), f"w{i}") for i in (1, 2)]
        g = helper.make_graph([
            helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
            helper.make_node("FancyOp", ["h"], ["f"], name="fancy", domain="com.example", alpha=2.0),
            helper.make_node("MatMul", ["f", "w2"], ["z"], name="fc2"),
            helper.make_node("Relu", ["z"], ["y"], name="relu")],
            "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["t", 8])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["t", 8])], w)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
        onnx.save(m, sys.argv[1])
        """

    static let describe = """
        import sys, json, onnx
        m = onnx.load(sys.argv[1])
        fancy = [n for n in m.graph.node if n.op_type == "FancyOp"]
        print(json.dumps({"fancy": [[n.domain, list(n.input), list(n.output), [a.name for a in n.attribute]] for n in fancy],
                          "dq": sum(n.op_type == "DequantizeLinear" for n in m.graph.node)}))
        """

    @Test func customOpIsListedKeptAndWorkedAround() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = dir + "/custom.onnx"
        _ = try CLI.runPython(Self.makeModel, [model])
        let inspect = try CLI.run(["inspect", model])
        #expect(inspect.status == 0, "\(inspect)")
        #expect(inspect.stdout.contains("ops the interpreter cannot run (kept as is): com.example::FancyOp"), "\(inspect)")

        let output = dir + "/custom.int8.onnx"
        let quantize = try CLI.run(["--passes", "quantize{policy=O1}", model, "-o", output])
        #expect(quantize.status == 0, "\(quantize)")
        #expect(quantize.stdout.contains("linears=2"), "both linears around the custom op: \(quantize)")
        let check = try CLI.json(try CLI.runPython(Self.describe, [output]))
        let fancy = check["fancy"] as? [[Any]] ?? []
        #expect(fancy.count == 1 && fancy[0][0] as? String == "com.example", "\(check)")
        #expect(fancy.first?[1] as? [String] == ["h"] && fancy.first?[3] as? [String] == ["alpha"], "\(check)")
        #expect((check["dq"] as? Int ?? 0) >= 4, "\(check)")

        let calibrate = try CLI.run(["--passes", "calibrate", "--calib", CLI.path("models/tiny-llama/samples"), model, "-o", dir + "/c.onnx"])
        #expect(calibrate.status == 1, "\(calibrate)")
        #expect(calibrate.stderr.contains("node 'fancy' (com.example::FancyOp): unsupported operator"), "\(calibrate)")
    }
}
