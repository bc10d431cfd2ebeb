import Foundation
import Testing

/// Issue 17: a pipeline whose smooth/quantize found nothing to do ends with exit 1, names
/// why, and writes nothing, unless --allow-noop (docs/cli.md, "Runs that do nothing"). The
/// models are built inline: `x → LayerNormalization → MatMul(W1) → Relu → MatMul(W2)`, with the
/// weights in the form the case needs, and one calibration sample beside the model.
@Suite struct CLINoopTests {
    /// `build.py KIND DIR`: DIR/model.onnx and DIR/test_data_set_0/input_0.pb.
    /// KIND: float32, float16 / float64 (every tensor in that type), bfloat16 (bfloat16 weights cast to
    /// float), dq (int8 weights through DequantizeLinear), castmul (Cast(int8) then Mul(scale)),
    /// dead (float32 plus three MatMul branches that reach no output).
    static let builder = """
        import os, sys, numpy as np, onnx
        from onnx import helper, numpy_helper, TensorProto as TP
        kind, out = sys.argv[1:3]
        rng = np.random.default_rng(17)
        ft = {"float16": TP.FLOAT16, "float64": TP.DOUBLE}.get(kind, TP.FLOAT)
        npf = {"float16": np.float16, "float64": np.float64}.get(kind, np.float32)
        inits, nodes = [], []
        inits += [numpy_helper.from_array(np.ones(8, npf), "gamma"), numpy_helper.from_array(np.zeros(8, npf), "beta")]
        nodes.append(helper.make_node("LayerNormalization", ["x", "gamma", "beta"], ["n"], name="/ln/LayerNormalization", axis=-1))
        def weight(i):
            w = rng.standard_normal((8, 8)).astype(np.float32)
            name = f"w{i}"
            if kind in ("float32", "float16", "float64", "dead"):
                inits.append(numpy_helper.from_array(w.astype(npf), name))
            elif kind == "bfloat16":
                raw = (w.view(np.uint32) >> 16).astype(np.uint16).tobytes()
                inits.append(helper.make_tensor(name + "_bf16", TP.BFLOAT16, [8, 8], raw, raw=True))
                nodes.append(helper.make_node("Cast", [name + "_bf16"], [name], name=f"/fc{i}/Cast", to=TP.FLOAT))
            else:
                scale = np.abs(w).max() / 127
                q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
                inits.extend([numpy_helper.from_array(q, name + "_q"), numpy_helper.from_array(np.array(scale, np.float32), name + "_s")])
                if kind == "dq":
                    nodes.append(helper.make_node("DequantizeLinear", [name + "_q", name + "_s"], [name], name=f"/fc{i}/DequantizeLinear"))
                else:
                    nodes.append(helper.make_node("Cast", [name + "_q"], [name + "_c"], name=f"/fc{i}/Cast", to=TP.FLOAT))
                    nodes.append(helper.make_node("Mul", [name + "_c", name + "_s"], [name], name=f"/fc{i}/Mul"))
            return name
        nodes.append(helper.make_node("MatMul", ["n", weight(1)], ["h"], name="/fc1/MatMul"))
        nodes.append(helper.make_node("Relu", ["h"], ["r"], name="/act/Relu"))
        nodes.append(helper.make_node("MatMul", ["r", weight(2)], ["h2"], name="/fc2/MatMul"))
        nodes.append(helper.make_node("Relu", ["h2"], ["y"], name="/out/Relu"))
        if kind == "dead":  # three branches no output reads: never computed
            for i in range(3):
                nodes.append(helper.make_node("Relu", ["n"], [f"d{i}"], name=f"/dead{i}/Relu"))
                inits.append(numpy_helper.from_array(rng.standard_normal((8, 8)).astype(np.float32), f"wd{i}"))
                nodes.append(helper.make_node("MatMul", [f"d{i}", f"wd{i}"], [f"e{i}"], name=f"/dead{i}/MatMul"))
        graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", ft, [1, 4, 8])],
                                  [helper.make_tensor_value_info("y", ft, [1, 4, 8])], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        onnx.checker.check_model(model)
        os.makedirs(os.path.join(out, "test_data_set_0"), exist_ok=True)
        onnx.save(model, os.path.join(out, "model.onnx"))
        x = rng.standard_normal((1, 4, 8)).astype(npf)
        onnx.save_tensor(numpy_helper.from_array(x, "x"), os.path.join(out, "test_data_set_0", "input_0.pb"))
        """

    /// A fresh folder with the KIND model; returns (folder, model path).
    static func make(_ kind: String) throws -> (String, String) {
        let dir = try CLI.temporaryDirectory()
        _ = try CLI.runPython(builder, [kind, dir])
        return (dir, dir + "/model.onnx")
    }

    static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    /// The control: float32 models, and float16 ones (quantized in their own type,
    /// docs/onnx-io.md), are quantized and written; the rule does not trip.
    @Test(arguments: ["float32", "float16"])
    func floatModelIsQuantizedAndWritten(_ kind: String) throws {
        let (dir, model) = try Self.make(kind)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try CLI.run(["--passes", "calibrate,smooth,quantize", "--calib", dir, model, "-o", dir + "/out.onnx"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("linears=2"), "\(result)")
        #expect(!result.stderr.contains("nothing to do"), "\(result)")
        #expect(Self.exists(dir + "/out.onnx"))
    }

    /// float64 linears are not supported yet: the run is refused naming the type and the nodes.
    @Test func float64ModelIsRefusedNamingTheDType() throws {
        let (dir, model) = try Self.make("float64")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try CLI.run(["--passes", "quantize", model, "-o", dir + "/out.onnx"])
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.contains("nothing to do, no output written"), "\(result)")
        #expect(result.stderr.contains("quantize: no linear quantized: float type float64 is not supported yet: 2 MatMul/Gemm"), "\(result)")
        #expect(result.stderr.contains("'/fc1/MatMul', '/fc2/MatMul'"), "names the nodes: \(result)")
        #expect(result.stderr.contains("--allow-noop"), "\(result)")
        #expect(!result.stdout.contains("wrote"), "\(result)")
        #expect(!Self.exists(dir + "/out.onnx"), "a refused run writes no file")
    }

    @Test func bfloat16WeightsAreRefused() throws {
        let (dir, model) = try Self.make("bfloat16")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try CLI.run(["--passes", "calibrate,smooth,quantize", "--calib", dir, model, "-o", dir + "/out.onnx"])
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.contains("quantize: no linear quantized: float type bfloat16 is not supported yet: 2 MatMul/Gemm have bfloat16 weights"), "\(result)")
        #expect(!Self.exists(dir + "/out.onnx"))
        // The weight casts are weights (folded at lowering), not activations calibration
        // should have seen: no "never computed" warnings for them.
        #expect(!result.stderr.contains("never computed"), "\(result)")
    }

    /// Values calibration never saw are one warning line with a count and a hint.
    @Test func neverComputedValuesAreOneWarningLine() throws {
        let (dir, model) = try Self.make("dead")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try CLI.run(["--passes", "calibrate,smooth,quantize", "--calib", dir, model, "-o", dir + "/out.onnx"])
        #expect(result.status == 0, "\(result)")
        let lines = result.stderr.split(separator: "\n").filter { $0.contains("never computed") }
        #expect(lines.count == 1, "one summarised warning: \(result)")
        #expect(lines.first?.hasPrefix("warning: [calibrate] 3 of 5 MatMul/Gemm input value(s) were never computed") == true, "\(result)")
        #expect(lines.first?.contains("'d0', 'd1', 'd2'") == true && lines.first?.contains("sqopt inspect") == true, "\(result)")

        // smooth{scope=all} takes the dead branches as groups: one line for the three it skips.
        let all = try CLI.run(["--passes", "calibrate,smooth{scope=all},quantize", "--calib", dir, model, "-o", dir + "/all.onnx"])
        #expect(all.status == 0, "\(all)")
        let skipped = all.stderr.split(separator: "\n").filter { $0.contains("not smoothed") }
        #expect(skipped.count == 1, "\(all)")
        #expect(skipped.first?.hasPrefix("warning: [smooth] 3 of 5 group(s) not smoothed: no per-channel calibration statistics") == true, "\(all)")
        #expect(all.stdout.contains("groups=2") && all.stdout.contains("skipped=3"), "\(all)")
    }

    @Test(arguments: [("dq", "DequantizeLinear"), ("castmul", "Cast+Mul")])
    func alreadyQuantizedWeightsAreRefused(_ kind: String, _ form: String) throws {
        let (dir, model) = try Self.make(kind)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try CLI.run(["--passes", "quantize", model, "-o", dir + "/out.onnx"])
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.contains("weights already quantized: 2 MatMul/Gemm read int8 weights (\(form)): '/fc1/MatMul', '/fc2/MatMul'"), "\(result)")
        #expect(!Self.exists(dir + "/out.onnx"))

        let inspect = try CLI.run(["inspect", model])
        #expect(inspect.status == 0, "\(inspect)")
        #expect(inspect.stdout.contains("weight-only int8 (\(form); quantize refuses these): 2\n    /fc1/MatMul\n    /fc2/MatMul\n"), "\(inspect)")
        let json = try CLI.json(try CLI.run(["inspect", model, "--json"]).stdout)
        let linears = json["linears"] as? [String: Any]
        let weightOnly = linears?["weightOnlyInt8"] as? [[String: Any]] ?? []
        #expect(weightOnly.compactMap { $0["node"] as? String } == ["/fc1/MatMul", "/fc2/MatMul"], "\(json)")
        #expect(linears?["float32"] as? Int == 0, "\(json)")
    }

    @Test func allowNoopWritesTheModelWithAWarning() throws {
        let (dir, model) = try Self.make("dq")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try CLI.run(["--passes", "quantize", model, "-o", dir + "/out.onnx", "--allow-noop"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.contains("warning: quantize: no linear quantized: weights already quantized"), "\(result)")
        #expect(result.stderr.contains("--allow-noop: writing the model anyway"), "\(result)")
        #expect(result.stdout.contains("wrote \(dir)/out.onnx"), "\(result)")
        #expect(Self.exists(dir + "/out.onnx"))
    }

    /// The output of sqopt itself is W8A8 QDQ already: quantizing it again is refused too.
    @Test func quantizingSqoptOutputAgainIsRefused() throws {
        let (dir, model) = try Self.make("float32")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try CLI.run(["--passes", "quantize", model, "-o", dir + "/int8.onnx", "--quiet"])
        #expect(first.status == 0, "\(first)")
        let again = try CLI.run(["--passes", "quantize", dir + "/int8.onnx", "-o", dir + "/again.onnx"])
        #expect(again.status == 1, "\(again)")
        #expect(again.stderr.contains("weights already quantized: 2 MatMul/Gemm"), "\(again)")
        #expect(!Self.exists(dir + "/again.onnx"))
    }
}
