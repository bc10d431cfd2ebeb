import Foundation
import Testing

/// float16 and bfloat16 models (issue 16, item 1) end to end through the CLI: a models/ model
/// converted by tools/convert_float16.py, `sqopt --passes calibrate,smooth,quantize`, then
/// onnxruntime on the written file (bfloat16: through `widen_bfloat16_for_ort`, since
/// onnxruntime's CPU provider has no bfloat16 kernels) and sqopt's own interpreter on it.
@Suite struct CLIFloat16Tests {
    struct Case: Sendable, CustomStringConvertible {
        let model: String
        let dtype: String
        /// `--keep-fp32` of the converter (a mixed graph: float32 norms with Casts around).
        var keepFP32: String?
        var description: String { "\(model) \(dtype)\(keepFP32.map { " keep-fp32=\($0)" } ?? "")" }
    }

    static let cases = [
        Case(model: "tiny-llama", dtype: "float16"),
        Case(model: "tiny-llama", dtype: "bfloat16"),
        Case(model: "tiny-bert", dtype: "float16"),
        Case(model: "tiny-llama", dtype: "float16", keepFP32: "norm"),
        Case(model: "tiny-bert", dtype: "float16", keepFP32: "LayerNormalization"),
    ]

    /// Prints JSON: the written file's output element types and float initializer types, the
    /// cosine of onnxruntime's output on it with the float32 model's (and with sqopt's own
    /// output, an .npy file), and the op counts.
    static let check = """
        import json, os, sys, numpy as np, onnx, onnxruntime as ort
        from onnx import numpy_helper, TensorProto
        sys.path.insert(0, os.path.join(sys.argv[6], "tools"))
        import convert_float16
        fp32, converted, quantized, data, sqopt_out = sys.argv[1:6]
        q = onnx.load(quantized)
        onnx.checker.check_model(q, full_check=True)
        src = onnx.load(converted)
        def types(m):
            return sorted({TensorProto.DataType.Name(t.data_type) for t in m.graph.initializer
                           if t.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16)})
        runnable = q
        if any(t.data_type == TensorProto.BFLOAT16 for t in q.graph.initializer):
            runnable = convert_float16.widen_bfloat16_for_ort(q)
        sess = ort.InferenceSession(runnable.SerializeToString(), providers=["CPUExecutionProvider"])
        ref_sess = ort.InferenceSession(fp32, providers=["CPUExecutionProvider"])
        names = [i.name for i in ref_sess.get_inputs()]
        feed = {n: numpy_helper.to_array(onnx.load_tensor(os.path.join(data, f"input_{k}.pb"))) for k, n in enumerate(names)}
        got = sess.run(None, feed)[0].astype(np.float64).ravel()
        ref = ref_sess.run(None, feed)[0].astype(np.float64).ravel()
        mine = np.load(sqopt_out).astype(np.float64).ravel()
        cos = lambda a, b: float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        ops = [n.op_type for n in q.graph.node]
        print(json.dumps({
            "outputTypes": [TensorProto.DataType.Name(o.type.tensor_type.elem_type) for o in q.graph.output],
            "sourceOutputTypes": [TensorProto.DataType.Name(o.type.tensor_type.elem_type) for o in src.graph.output],
            "initializerTypes": types(q), "sourceInitializerTypes": types(src),
            "ortVsFP32": cos(got, ref), "sqoptVsOrt": cos(mine, got), "finite": bool(np.isfinite(got).all()),
            "quantize": ops.count("QuantizeLinear"), "dequantize": ops.count("DequantizeLinear")}))
        """

    @Test(arguments: cases)
    func quantizesAndKeepsTheFloatType(_ c: Case) throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let converted = dir + "/model/model.onnx"
        var convert = [CLI.path("tools/convert_float16.py"), "--dtype", c.dtype, "--copy-data",
                       CLI.path("models/\(c.model)/model.onnx"), converted]
        if let keep = c.keepFP32 { convert += ["--keep-fp32", keep] }
        let conversion = try CLI.execute(try CLI.python(), convert)
        #expect(conversion.status == 0, "\(conversion)")

        let output = dir + "/model.int8.onnx"
        let result = try CLI.run(["--passes", "calibrate,smooth,quantize", "--calib", dir + "/model", converted, "-o", output])
        #expect(result.status == 0, "\(result)")
        let linears = result.stdout.firstMatch(of: /linears=(\d+)/).flatMap { Int($0.1) } ?? 0
        #expect(linears > 0, "no linear quantized: \(result)")
        let groups = result.stdout.firstMatch(of: /groups=(\d+)/).flatMap { Int($0.1) } ?? 0
        #expect(groups > 0, "no group smoothed: \(result)")

        let runDir = dir + "/run"
        let run = try CLI.run(["run", output, "--data", dir + "/model/test_data_set_0", "--output-dir", runDir])
        #expect(run.status == 0, "\(run)")
        // The int8 kernels run on the half-precision QDQ file (converted at the boundary).
        let bench = try CLI.run(["bench", output, "--data", dir + "/model/test_data_set_0", "--runs", "1", "--profile"])
        #expect(bench.status == 0 && bench.stdout.contains("MatMul (int8)"), "\(bench)")
        let outputName = c.model == "tiny-bert" ? "last_hidden_state" : "logits"
        let files = (try? FileManager.default.contentsOfDirectory(atPath: runDir)) ?? []
        let npy = files.sorted().first { $0.hasPrefix(outputName) } ?? files.sorted().first ?? "missing.npy"

        let check = try CLI.json(try CLI.runPython(Self.check, [
            CLI.path("models/\(c.model)/model.onnx"), converted, output, dir + "/model/test_data_set_0",
            runDir + "/" + npy, CLI.path("")]))
        let expectedType = c.dtype == "float16" ? "FLOAT16" : "BFLOAT16"
        #expect((check["outputTypes"] as? [String])?.first == expectedType, "\(check)")
        #expect(check["outputTypes"] as? [String] == check["sourceOutputTypes"] as? [String], "\(check)")
        // Float initializers stay in the types the input had (no float32 scale or weight
        // appears in a pure float16 model); bfloat16 layers are quantized in float32 islands
        // (passes/SmoothQuant/Quantization/Float32Islands.swift), whose scales are float32.
        var expectedTypes = Set(check["sourceInitializerTypes"] as? [String] ?? [])
        if c.dtype == "bfloat16" { expectedTypes.insert("FLOAT") }
        #expect(check["initializerTypes"] as? [String] == expectedTypes.sorted(), "\(check)")
        #expect(check["finite"] as? Bool == true, "\(check)")
        #expect((check["quantize"] as? Int ?? 0) > 0, "\(check)")
        // fp32 W8A8 of these models measures ≥ 0.99 against fp32; half precision adds little.
        let ortVsFP32 = check["ortVsFP32"] as? Double ?? 0
        #expect(ortVsFP32 > 0.98, "\(c): onnxruntime on the int8 file vs the float32 model: cosine \(ortVsFP32)")
        let sqoptVsOrt = check["sqoptVsOrt"] as? Double ?? 0
        #expect(sqoptVsOrt > 0.98, "\(c): sqopt's interpreter vs onnxruntime on the same file: cosine \(sqoptVsOrt)")
    }

    /// The real MiniLM (build/real, skipped when absent) in float16: converted, quantized with
    /// the default pipeline on its calibration data, sentence embeddings from onnxruntime
    /// against the float32 model's on the held-out samples.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: CLI.path("build/real/minilm/model.onnx")),
                   "needs build/real/minilm (tools/build_minilm.py)"))
    func realMiniLMInFloat16() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let converted = dir + "/minilm/model.onnx"
        let conversion = try CLI.execute(try CLI.python(), [CLI.path("tools/convert_float16.py"),
                                                            CLI.path("build/real/minilm/model.onnx"), converted])
        #expect(conversion.status == 0, "\(conversion)")
        let output = dir + "/minilm.int8.onnx"
        let result = try CLI.run(["--passes", "calibrate,smooth,quantize", "--calib", CLI.path("build/real/minilm/calib"),
                                  converted, "-o", output])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("linears=36"), "\(result)")
        let script = """
            import json, sys, numpy as np, onnx, onnxruntime as ort
            sys.path.insert(0, sys.argv[3] + "/tools")
            import realmodels
            from pathlib import Path
            q = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
            f = ort.InferenceSession(sys.argv[2], providers=["CPUExecutionProvider"])
            cos = []
            for folder in realmodels.list_test_data_sets(Path(sys.argv[3]) / "build/real/minilm/eval")[:8]:
                feed = realmodels.read_test_data_set(folder)[0]
                a = q.run(["sentence_embedding"], feed)[0].astype(np.float64).ravel()
                b = f.run(["sentence_embedding"], feed)[0].astype(np.float64).ravel()
                cos.append(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))))
            print(json.dumps({"dtype": onnx.load(sys.argv[1]).graph.output[0].type.tensor_type.elem_type, "cosine": min(cos)}))
            """
        let check = try CLI.json(try CLI.runPython(script, [output, CLI.path("build/real/minilm/model.onnx"), CLI.path("")]))
        #expect(check["dtype"] as? Int == 10, "output stays float16: \(check)")
        // fp32 MiniLM's SmoothQuant O1 per-channel row: worst sample 0.99857 (docs/accuracy.md).
        let cosine = check["cosine"] as? Double ?? 0
        #expect(cosine > 0.997, "worst embedding cosine vs float32: \(cosine)")
    }
}
