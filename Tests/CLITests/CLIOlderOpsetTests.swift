import Foundation
import Testing

/// Models at opsets 13–16 (issue 16, item 5), where ReduceMean/ReduceMax still take `axes` as
/// an attribute: they load, `upgrade-opset` (which `quantize` runs) keeps their outputs exact,
/// and the quantized file onnxruntime runs equals the one made from the same model at opset 21.
@Suite struct CLIOlderOpsetTests {
    /// Writes, into argv[1]: `old/model.onnx` at opset argv[2] and `new/model.onnx`, the same
    /// graph at opset 21 (onnx's version_converter, upwards), each with two calibration sets.
    /// `tiny-llama` is models/tiny-llama relabeled (every op it uses has the same schema at 14
    /// and 17: version_converter cannot go down past Shape-15); `inline` is a small block built
    /// at opset 13: RMSNorm with ReduceMean{axes}, MatMul, Split, Mul(Sigmoid), MatMul, Unsqueeze,
    /// Squeeze, Softmax, and a ReduceMax{axes} output.
    static let build = """
        import os, sys, numpy as np, onnx
        from onnx import helper, numpy_helper, TensorProto, version_converter
        out, opset, which, repo = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
        rng = np.random.default_rng(3)
        if which == "tiny-llama":
            m = onnx.load(os.path.join(repo, "models/tiny-llama/model.onnx"))
            for o in m.opset_import:
                if o.domain in ("", "ai.onnx"): o.version = opset
            m.ir_version = 7
            feeds = [{"input_ids": rng.integers(0, 128, (1, t)).astype(np.int64)} for t in (7, 12)]
        else:
            c = 32
            def const(name, a): return numpy_helper.from_array(a.astype(np.float32), name)
            gamma = np.ones(c, np.float32); gamma[[3, 17]] = 12.0
            inits = [const("gamma", gamma), const("eps", np.array(1e-5)), const("w1", rng.normal(0, 0.2, (c, 2 * c))),
                     const("w2", rng.normal(0, 0.2, (c, c))), numpy_helper.from_array(np.array([c, c], np.int64), "split"),
                     numpy_helper.from_array(np.array([1], np.int64), "axis1")]
            nodes = [
                helper.make_node("Mul", ["x", "x"], ["sq"], name="norm/Square"),
                helper.make_node("ReduceMean", ["sq"], ["ms"], name="norm/ReduceMean", axes=[-1], keepdims=1),
                helper.make_node("Add", ["ms", "eps"], ["mse"], name="norm/Add"),
                helper.make_node("Sqrt", ["mse"], ["rms"], name="norm/Sqrt"),
                helper.make_node("Div", ["x", "rms"], ["normed"], name="norm/Div"),
                helper.make_node("Mul", ["normed", "gamma"], ["h"], name="norm/Mul"),
                helper.make_node("MatMul", ["h", "w1"], ["gu"], name="fc1/MatMul"),
                helper.make_node("Split", ["gu", "split"], ["g", "u"], name="Split", axis=-1),
                helper.make_node("Sigmoid", ["g"], ["sg"], name="Sigmoid"),
                helper.make_node("Mul", ["sg", "u"], ["act"], name="act/Mul"),
                helper.make_node("MatMul", ["act", "w2"], ["y0"], name="fc2/MatMul"),
                helper.make_node("Unsqueeze", ["y0", "axis1"], ["y1"], name="Unsqueeze"),
                helper.make_node("Squeeze", ["y1", "axis1"], ["y2"], name="Squeeze"),
                helper.make_node("Softmax", ["y2"], ["y"], name="Softmax", axis=-1),
                helper.make_node("ReduceMax", ["y0"], ["peak"], name="ReduceMax", axes=[-1], keepdims=0),
            ]
            graph = helper.make_graph(nodes, "older_opset",
                                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", c])],
                                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", c]),
                                       helper.make_tensor_value_info("peak", TensorProto.FLOAT, ["batch", "seq"])], inits)
            m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
            m.ir_version = 7
            feeds = [{"x": rng.normal(0, 1, (2, t, c)).astype(np.float32)} for t in (5, 9)]
        onnx.checker.check_model(m, full_check=True)
        new = version_converter.convert_version(m, 21)
        onnx.checker.check_model(new, full_check=True)
        for sub, model in (("old", m), ("new", new)):
            os.makedirs(os.path.join(out, sub), exist_ok=True)
            onnx.save(model, os.path.join(out, sub, "model.onnx"))
            for k, feed in enumerate(feeds):
                d = os.path.join(out, sub, f"test_data_set_{k}")
                os.makedirs(d, exist_ok=True)
                for i, (name, value) in enumerate(feed.items()):
                    onnx.save_tensor(numpy_helper.from_array(value, name), os.path.join(d, f"input_{i}.pb"))
        """

    /// Runs models argv[1] and argv[2] on data set argv[3] in onnxruntime; prints the worst
    /// relative difference over all outputs, argv[1]'s opset and its Reduce* nodes with an
    /// `axes` attribute.
    static let compare = """
        import json, os, sys, numpy as np, onnx, onnxruntime as ort
        from onnx import numpy_helper
        a_path, b_path, data = sys.argv[1:4]
        outs = []
        for path in (a_path, b_path):
            s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            feed = {i.name: numpy_helper.to_array(onnx.load_tensor(os.path.join(data, f"input_{k}.pb")))
                    for k, i in enumerate(s.get_inputs())}
            outs.append(s.run(None, feed))
        worst = max(float(np.abs(x - y).max() / max(np.abs(y).max(), 1e-30)) for x, y in zip(*outs))
        m = onnx.load(a_path)
        attr_axes = [n.name for n in m.graph.node if n.op_type.startswith("Reduce") and any(a.name == "axes" for a in n.attribute)]
        print(json.dumps({"worst": worst, "opset": max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")),
                          "attributeAxes": attr_axes, "qdq": sum(n.op_type == "QuantizeLinear" for n in m.graph.node)}))
        """

    @Test(arguments: [("inline", 13), ("inline", 16), ("tiny-llama", 14)])
    func olderOpsetQuantizesLikeOpset21(_ which: String, _ opset: Int) throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try CLI.runPython(Self.build, [dir, String(opset), which, CLI.path("")])
        let old = dir + "/old/model.onnx", new = dir + "/new/model.onnx", data = dir + "/old/test_data_set_1"

        // upgrade-opset alone: the same outputs, bit for bit, in onnxruntime.
        let upgraded = dir + "/old.upgraded.onnx"
        let upgrade = try CLI.run(["--passes", "upgrade-opset", old, "-o", upgraded])
        #expect(upgrade.status == 0, "\(upgrade)")
        let exact = try CLI.json(try CLI.runPython(Self.compare, [upgraded, old, data]))
        #expect(exact["worst"] as? Double == 0, "upgrade-opset changed the outputs: \(exact)")
        #expect(exact["opset"] as? Int == 21, "\(exact)")
        #expect((exact["attributeAxes"] as? [String])?.isEmpty == true, "Reduce* axes must be inputs at 21: \(exact)")

        // The pipeline on the old-opset model and on the same model at opset 21.
        var written: [String] = []
        for (source, folder) in [(old, "old"), (new, "new")] {
            let output = dir + "/\(folder).int8.onnx"
            let result = try CLI.run(["--passes", "calibrate,smooth,quantize", "--calib", dir + "/\(folder)", source, "-o", output])
            #expect(result.status == 0, "\(result)")
            let linears = result.stdout.firstMatch(of: /linears=(\d+)/).flatMap { Int($0.1) } ?? 0
            #expect(linears > 0, "\(which) opset \(opset): nothing quantized: \(result)")
            written.append(output)
        }
        let same = try CLI.json(try CLI.runPython(Self.compare, [written[0], written[1], data]))
        #expect((same["qdq"] as? Int ?? 0) > 0, "\(same)")
        #expect(same["opset"] as? Int == 21, "\(same)")
        // Same graph, same calibration: the same quantized model up to float rounding.
        let worst = same["worst"] as? Double ?? 1
        #expect(worst < 1e-5, "\(which) opset \(opset) vs opset 21, quantized, in onnxruntime: worst relative difference \(worst)")
    }
}
