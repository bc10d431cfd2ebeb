import Foundation
import Testing

/// KV-cache decoders in the optimum layout (models/tiny-llama-kv, tools/build_smollm2_kv.py
/// --tiny): calibration on prefill (empty past) and decode (filled past) samples, W8A8 that
/// keeps the cache float, onnxruntime on the result, and `sqopt run --decode`.
@Suite struct CLIKVCacheTests {
    /// argv: FLOAT_MODEL INT8_MODEL DATA_SET... ; prints JSON: per set the logits cosine and
    /// KL(float ‖ int8), the worst relative present error, and what feeds the cache Concats.
    static let compare = """
        import json, sys
        import numpy as np, onnx, onnxruntime as ort
        from onnx import numpy_helper, TensorProto
        def load_set(d, names):
            import glob, os
            out = {}
            for i, n in enumerate(names):
                t = TensorProto(); t.ParseFromString(open(os.path.join(d, f"input_{i}.pb"), "rb").read())
                out[n] = numpy_helper.to_array(t)
            return out
        fp, q = (ort.InferenceSession(p, providers=["CPUExecutionProvider"]) for p in sys.argv[1:3])
        names = [i.name for i in fp.get_inputs()]
        result = {"cosine": [], "kl": [], "present": 0.0}
        for d in sys.argv[3:]:
            feed = load_set(d, names)
            a = dict(zip([o.name for o in fp.get_outputs()], fp.run(None, feed)))
            b = dict(zip([o.name for o in q.get_outputs()], q.run(None, feed)))
            x, y = a["logits"].ravel().astype(np.float64), b["logits"].ravel().astype(np.float64)
            result["cosine"].append(float(x @ y / np.linalg.norm(x) / np.linalg.norm(y)))
            def logp(l): l = l - l.max(-1, keepdims=True); return l - np.log(np.exp(l).sum(-1, keepdims=True))
            pa, pb = logp(a["logits"].astype(np.float64)), logp(b["logits"].astype(np.float64))
            result["kl"].append(float((np.exp(pa) * (pa - pb)).sum(-1).mean()))
            for k in a:
                if k.startswith("present."):
                    assert a[k].shape == b[k].shape, (k, a[k].shape, b[k].shape)
                    result["present"] = max(result["present"], float(np.abs(a[k] - b[k]).max() / np.abs(a[k]).max()))
        m = onnx.load(sys.argv[2])
        producer = {o: n for n in m.graph.node for o in n.output}
        concats = [producer[o.name] for o in m.graph.output if o.name.startswith("present.")]
        result["cache_ops"] = sorted({n.op_type for n in concats})
        result["cache_inputs_from"] = sorted({producer[i].op_type for n in concats for i in n.input if i in producer})
        print(json.dumps(result))
        """

    @Test func calibrateSmoothQuantizeKeepsTheCacheFloat() throws {
        let dir = try CLI.copyModel("tiny-llama-kv")
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let output = dir + "/model.int8.onnx"
        let result = try CLI.run(["--passes", "calibrate,smooth,quantize", "--calib", dir + "/calib",
                                  dir + "/model.onnx", "-o", output])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("samples=8"), "4 prefill + 4 decode samples: \(result)")
        // 2 layers × (attention, MLP norm) + down_proj into up_proj + the LM head's final norm
        #expect(result.stdout.contains("folded=7, groups=7, muls=0"), "every group folds: \(result)")
        let check = try CLI.json(try CLI.runPython(Self.compare, [dir + "/model.onnx", output,
                                                                 dir + "/test_data_set_0", dir + "/test_data_set_1"]))
        #expect(check["cache_ops"] as? [String] == ["Concat"], "\(check)")
        // past (graph input) ++ RoPE(k) (Add) / v (Transpose): no Q/DQ on the cache path
        #expect(check["cache_inputs_from"] as? [String] == ["Add", "Transpose"], "\(check)")
        for cosine in check["cosine"] as? [Double] ?? [] { #expect(cosine > 0.99, "\(check)") }
        for kl in check["kl"] as? [Double] ?? [] { #expect(kl < 0.02, "\(check)") }
        // present = Concat(past, k/v of int8 linears): worst element within 25% of the largest (measured 0.13)
        #expect((check["present"] as? Double ?? 1) < 0.25, "\(check)")
    }

    @Test func runDecodeFeedsPresentsBackAsPast() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = CLI.path("models/tiny-llama-kv")
        let result = try CLI.run(["run", model + "/model.onnx", "--data", model + "/test_data_set_0",
                                  "--output-dir", dir, "--decode", "1"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("decode step 1: input_ids"), "\(result)")
        // test_data_set_1 is onnxruntime's decode step after test_data_set_0 with the greedy token
        let script = """
            import sys, numpy as np
            from onnx import numpy_helper, TensorProto
            t = TensorProto(); t.ParseFromString(open(sys.argv[2] + "/output_0.pb", "rb").read())
            want = numpy_helper.to_array(t); got = np.load(sys.argv[1] + "/decode_1/logits.npy")
            assert got.shape == want.shape, (got.shape, want.shape)
            print(float(np.abs(got - want).max() / np.abs(want).max()))
            """
        let error = Double(try CLI.runPython(script, [dir, model + "/test_data_set_1"]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 1
        #expect(error < 1e-5, "sqopt decode step vs onnxruntime: relative error \(error)")
    }

    @Test func runTimeReportsEveryPhaseAndTheOutputsStayTheSame() throws {
        let dir = try CLI.temporaryDirectory(), plain = try CLI.temporaryDirectory()
        defer { for d in [dir, plain] { try? FileManager.default.removeItem(atPath: d) } }
        let model = CLI.path("models/tiny-llama-kv")
        let args = ["run", model + "/model.onnx", "--data", model + "/test_data_set_0", "--decode", "2"]
        let timed = try CLI.run(args + ["--output-dir", dir, "--time"])
        #expect(timed.status == 0, "\(timed)")
        let line = timed.stderr.split(separator: "\n").first { $0.hasPrefix("time: ") }.map(String.init) ?? ""
        for phase in ["load", "inputs", "lower", "run", "write", "decode", "total"] {
            #expect(line.contains(phase + " "), "phase \(phase) in '\(line)'")
        }
        #expect(!timed.stdout.contains("time: "), "the phases go to stderr: \(timed)")
        let untimed = try CLI.run(args + ["--output-dir", plain])
        #expect(untimed.status == 0 && !untimed.stderr.contains("time: "), "\(untimed)")
        // the .npy files are written the same way with and without --time
        for file in ["logits.npy", "decode_2/logits.npy"] {
            let a = FileManager.default.contents(atPath: dir + "/" + file)
            #expect(a != nil && a == FileManager.default.contents(atPath: plain + "/" + file), "\(file)")
        }
    }

    @Test func benchDecodeTimesEachStep() throws {
        let model = CLI.path("models/tiny-llama-kv")
        let result = try CLI.run(["bench", model + "/model.onnx", "--data", model + "/test_data_set_0",
                                  "--decode", "3", "--runs", "2", "--warmup", "1", "--json"])
        #expect(result.status == 0, "\(result)")
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
        #expect(json["decodeSteps"] as? Int == 3, "\(result.stdout)")
        #expect((json["runMilliseconds"] as? [Double])?.count == 6, "2 runs x 3 steps: \(result.stdout)")
        let text = try CLI.run(["bench", model + "/model.onnx", "--data", model + "/test_data_set_0",
                                "--decode", "2", "--runs", "1", "--warmup", "0", "--profile"])
        #expect(text.status == 0 && text.stdout.contains("of 2 decode steps: per step median"), "\(text)")
        #expect(text.stdout.contains("mean per decode step"), "\(text)")
        let noCache = CLI.path("models/tiny-llama")
        let refused = try CLI.run(["bench", noCache + "/model.onnx", "--data", noCache + "/test_data_set_0",
                                   "--decode", "1", "--runs", "1"])
        #expect(refused.status == 1 && refused.stderr.contains("past_key_values"), "\(refused)")
    }

    @Test func decodeOnAModelWithoutCacheIsAnError() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = CLI.path("models/tiny-llama")
        let result = try CLI.run(["run", model + "/model.onnx", "--data", model + "/test_data_set_0",
                                  "--output-dir", dir, "--decode", "1"])
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.contains("past_key_values"), "\(result)")
    }
}
