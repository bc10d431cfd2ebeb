import Foundation
import SQDriver
import SQIR
import SQONNX
import SQRuntime
import Testing
@testable import SQPasses

/// sqopt's smooth / quantize on the tiny models, written with SQONNX, run by onnxruntime and
/// compared with the independent numpy reference (tools/fakequant_reference.py).
@Suite(.enabled(if: SmoothQuantFixtures.hasPython, "needs .venv (tools/setup.sh)"), .serialized)
struct QuantizeONNXTests {
    static let models = ["tiny-opt", "tiny-llama", "tiny-bert"]
    /// Groups per model, and how many fold (tiny-bert is post-LN: none may fold).
    /// smooth's default (scope=foldable, lm-head=true): groups and folds per model. The LM
    /// head's group folds into the final norm; LLaMA's down_proj folds into up_proj.
    static let expectedGroups = ["tiny-opt": (5, 5), "tiny-llama": (7, 7), "tiny-bert": (4, 0)]
    /// quantize's default: 6 linears per layer (7 in LLaMA) and the LM head (tiny-bert has none).
    static let expectedLinears = ["tiny-opt": 13, "tiny-llama": 15, "tiny-bert": 12]

    /// Loads a tiny model, calibrates it with the interpreter, smooths it (α 0.5), and optionally
    /// quantizes it; writes the result into `dir`.
    static func optimize(_ name: String, quantize options: QuantizeOptions?, smooth: Bool = true,
                         scope: SmoothScope = Smooth.scopeOption.defaultValue, into dir: String) throws -> (path: String, reports: [SmoothGroupReport], quantized: QuantizeReport?) {
        let (model, calibrated) = try CalibrationTests.calibrate(name)
        var stats = calibrated
        var reports: [SmoothGroupReport] = []
        if smooth {
            reports = try Smoother(alpha: 0.5, scope: scope).run(on: model.graph, statistics: &stats).groups
        }
        var quantized: QuantizeReport?
        if let options {
            quantized = try W8A8Quantizer(options: options).run(on: model.graph, statistics: stats)
            _ = try UpgradeOpset(options: PassOptions().setting(UpgradeOpset.to, Quantize.opset)).run(on: model, context: PassContext())
        }
        try Verifier().verify(model)
        let path = dir + "/\(name).onnx"
        try SmoothQuantFixtures.write(model, to: path)
        return (path, reports, quantized)
    }

    static func compare(_ name: String, candidate: String, _ flags: [String], rtol: Double) throws -> (Int32, String) {
        let dir = SmoothQuantFixtures.modelDir(name)
        return try SmoothQuantFixtures.runTool("fakequant_reference.py",
            ["run", SmoothQuantFixtures.model(name), "--calib", dir, "--data", dir, "--compare", candidate,
             "--rtol", String(rtol)] + flags)
    }

    @Test(arguments: models)
    func smoothingIsExactInFloat(_ name: String) throws {
        let dir = try SmoothQuantFixtures.temporaryDirectory()
        defer { SmoothQuantFixtures.cleanUp(dir) }
        let result = try Self.optimize(name, quantize: nil, into: dir)
        let (groups, folded) = Self.expectedGroups[name] ?? (0, 0)
        #expect(result.reports.count == groups)
        #expect(result.reports.filter(\.folded).count == folded)
        // Against the numpy reference's smoothed model and, through it, the original (1e-5).
        let (status, output) = try Self.compare(name, candidate: result.path, ["--policy", "fp32"], rtol: 1e-5)
        #expect(status == 0, "\(output)")
        // Against the original model's stored outputs (onnxruntime, fp32).
        let original = try Self.compare(name, candidate: result.path, ["--policy", "fp32", "--no-smooth"], rtol: 1e-5)
        #expect(original.0 == 0, "\(original.1)")
    }

    /// scope=all also smooths o_proj / fc2 / down_proj inputs: a Mul where nothing can absorb
    /// 1/s, a fold into up_proj's output channels for LLaMA's down_proj (SwiGLU).
    @Test(arguments: models)
    func smoothingEveryLinearIsExactToo(_ name: String) throws {
        let dir = try SmoothQuantFixtures.temporaryDirectory()
        defer { SmoothQuantFixtures.cleanUp(dir) }
        let result = try Self.optimize(name, quantize: nil, scope: .all, into: dir)
        // per layer: q/k/v, out, fc1 (gate/up), fc2 (down); and the LM head
        #expect(result.reports.count == (name == "tiny-bert" ? 8 : 9))
        if name == "tiny-llama" {
            let intoUp = result.reports.filter { $0.foldedInto?.contains("up_proj") == true }
            #expect(intoUp.count == 2, "down_proj inputs fold into up_proj: \(result.reports.map { $0.foldedInto ?? "Mul" })")
        }
        let (status, output) = try Self.compare(name, candidate: result.path, ["--policy", "fp32", "--scope", "all"], rtol: 1e-5)
        #expect(status == 0, "\(output)")
        let original = try Self.compare(name, candidate: result.path, ["--policy", "fp32", "--no-smooth"], rtol: 1e-5)
        #expect(original.0 == 0, "\(original.1)")
        let quantized = try Self.optimize(name, quantize: QuantizeOptions(policy: .O1, weights: .perTensor, target: .qdq), scope: .all, into: dir)
        let q = try Self.compare(name, candidate: quantized.path, ["--policy", "O1", "--scope", "all"], rtol: 2e-3)
        #expect(q.0 == 0, "\(q.1)")
    }

    static let policies: [(QuantPolicy, WeightGranularity)] = [
        (.O1, .perTensor), (.O2, .perTensor), (.O3, .perTensor), (.O1, .perChannel), (.O3, .perChannel),
    ]

    @Test(arguments: models)
    func quantizedModelsRunInOnnxruntimeAndMatchTheReference(_ name: String) throws {
        let dir = try SmoothQuantFixtures.temporaryDirectory()
        defer { SmoothQuantFixtures.cleanUp(dir) }
        for (policy, weights) in Self.policies {
            let options = QuantizeOptions(policy: policy, weights: weights, bmm: false, target: .qdq)
            let result = try Self.optimize(name, quantize: options, into: dir)
            // 6 linears per layer (7 in LLaMA) and the LM head.
            #expect(result.quantized?.linears.count == QuantizeONNXTests.expectedLinears[name], "\(name) \(policy)")
            let outputs = dir + "/ort-\(policy)-\(weights.rawValue)"
            let (status, output) = try Self.compare(name, candidate: result.path,
                ["--policy", policy.rawValue, "--weights", weights.rawValue, "--save-candidate-outputs", outputs], rtol: 2e-3)
            #expect(status == 0, "\(name) \(policy) \(weights.rawValue): \(output)")
            let worst = try Self.interpreterAgreesWithOnnxruntime(model: result.path, samples: SmoothQuantFixtures.modelDir(name) + "/samples",
                                                                   ortOutputs: outputs)
            #expect(worst <= 1e-3, "\(name) \(policy) \(weights.rawValue): interpreter vs onnxruntime relative L2 \(worst)")
            print("\(name) \(policy) \(weights.rawValue): reference \(output.split(separator: "\n").last ?? ""); interpreter vs onnxruntime rel L2 \(worst)")
        }
    }

    /// Runs the written model in sqopt's interpreter (int8 lowering on) over the npy samples and
    /// returns the worst relative L2 difference to onnxruntime's outputs on the same file.
    static func interpreterAgreesWithOnnxruntime(model path: String, samples: String, ortOutputs: String) throws -> Double {
        let model = try SmoothQuantFixtures.load(path)
        let plan = try ExecutionPlan(model: model)
        let source = try CalibrationDirectory(path: samples, graphInputs: model.graph.inputs)
        var worst = 0.0
        for index in 0..<source.count {
            let outputs = try plan.run(inputs: try source.sample(at: index))
            for (name, tensor) in outputs {
                let expected = try NpyReader.read(path: ortOutputs + "/\(index)/\(name.replacingOccurrences(of: "/", with: "_")).npy")
                let a = tensor.elements(as: Float.self), b = expected.elements(as: Float.self)
                var diff = 0.0, norm = 0.0
                for (x, y) in zip(a, b) { diff += Double(x - y) * Double(x - y); norm += Double(y) * Double(y) }
                worst = max(worst, (diff / max(norm, 1e-30)).squareRoot())
            }
        }
        return worst
    }

    @Test(arguments: models)
    func attentionMatMulsQuantizeToo(_ name: String) throws {
        let dir = try SmoothQuantFixtures.temporaryDirectory()
        defer { SmoothQuantFixtures.cleanUp(dir) }
        for policy in [QuantPolicy.O1, .O3] {
            let result = try Self.optimize(name, quantize: QuantizeOptions(policy: policy, weights: .perTensor, bmm: true, target: .qdq), into: dir)
            #expect(result.quantized?.bmms.count == 4)
            let (status, output) = try Self.compare(name, candidate: result.path,
                ["--policy", policy.rawValue, "--bmm"], rtol: 2e-3)
            #expect(status == 0, "\(name) \(policy) bmm: \(output)")
        }
    }
}
