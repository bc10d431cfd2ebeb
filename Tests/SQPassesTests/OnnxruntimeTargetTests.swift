import Foundation
import SQIR
import SQRuntime
import Testing
@testable import SQPasses

/// `quantize{target=onnxruntime}`: the uint8 (zero point 128) form onnxruntime's u8×s8 kernels
/// run. onnxruntime executes the written file (its optimized session, so the fused
/// `MatMulIntegerToFloat` kernels), the result matches the independent numpy reference like
/// the portable QDQ form does, sqopt's interpreter agrees with onnxruntime on it, and the int8
/// codes are those of the QDQ form, saturation and rounding ties included.
@Suite(.enabled(if: SmoothQuantFixtures.hasPython, "needs .venv (tools/setup.sh)"), .serialized)
struct OnnxruntimeTargetTests {
    static let configurations: [(QuantPolicy, WeightGranularity, Bool)] = [
        (.O1, .perChannel, false), (.O2, .perTensor, false), (.O3, .perTensor, false), (.O3, .perChannel, true), (.O1, .perTensor, true),
    ]

    @Test(arguments: QuantizeONNXTests.models)
    func targetRunsInOnnxruntimeAndMatchesTheReference(_ name: String) throws {
        let dir = try SmoothQuantFixtures.temporaryDirectory()
        defer { SmoothQuantFixtures.cleanUp(dir) }
        for (policy, weights, bmm) in Self.configurations {
            let options = QuantizeOptions(policy: policy, weights: weights, bmm: bmm, target: .onnxruntime)
            let result = try QuantizeONNXTests.optimize(name, quantize: options, into: dir)
            let label = "\(name) \(policy) \(weights.rawValue)\(bmm ? " bmm" : "")"
            #expect(result.quantized?.linears.count == QuantizeONNXTests.expectedLinears[name], "\(label)")
            let model = try SmoothQuantFixtures.load(result.path)
            let quantizers = model.graph.nodes.filter { $0.isOp("QuantizeLinear") }
            // A constant uint8 zero point, or per token `Expand(128, Shape(Δ))` (QDQForms.quantizedByDelta).
            func uint8ZeroPoint(_ q: Node) -> Bool {
                guard let zp = q.input(2) else { return false }
                if let expand = zp.producer, expand.isOp(QDQForms.expandOp) { return expand.input(0)?.constant?.dtype == .uint8 }
                return zp.constant?.dtype == .uint8
            }
            #expect(!quantizers.isEmpty && quantizers.allSatisfy(uint8ZeroPoint), "\(label): every activation QuantizeLinear writes uint8")
            let outputs = dir + "/ort-\(policy)-\(weights.rawValue)-\(bmm)"
            let (status, output) = try QuantizeONNXTests.compare(name, candidate: result.path,
                ["--policy", policy.rawValue, "--weights", weights.rawValue, "--save-candidate-outputs", outputs] + (bmm ? ["--bmm"] : []),
                rtol: 2e-3)
            #expect(status == 0, "\(label): \(output)")
            let worst = try QuantizeONNXTests.interpreterAgreesWithOnnxruntime(model: result.path,
                samples: SmoothQuantFixtures.modelDir(name) + "/samples", ortOutputs: outputs)
            #expect(worst <= 1e-3, "\(label): interpreter vs onnxruntime relative L2 \(worst)")
            // The interpreter runs every quantized layer through its int8 kernels.
            let plan = try ExecutionPlan(model: model)
            let computed = Set(plan.computedValueNames)
            let floatSteps = model.graph.nodes.filter { $0.isOp("QuantizeLinear") || $0.isOp("DequantizeLinear") }
                .compactMap { $0.output(0)?.name }.filter(computed.contains)
            #expect(floatSteps.isEmpty, "\(label): Q/DQ run as float steps: \(floatSteps.prefix(3))")
            print("\(label) target=onnxruntime: reference \(output.split(separator: "\n").last ?? ""); interpreter vs onnxruntime \(worst)")
        }
    }

    /// One linear whose input holds values that saturate (|x/Δ| > 127, down to -128), sit
    /// exactly on ±127, and fall on rounding ties (x/Δ = k + 0.5). onnxruntime computes the
    /// QuantizeLinear codes of the QDQ file and of the onnxruntime-target file: the uint8 codes
    /// are the int8 codes + 128, and the two products agree.
    @Test(arguments: [QuantPolicy.O3, .O1])
    func saturationAndTiesGiveTheSameCodes(_ policy: QuantPolicy) throws {
        let dir = try SmoothQuantFixtures.temporaryDirectory()
        defer { SmoothQuantFixtures.cleanUp(dir) }
        // O3: Δ = 63.5 / 127 = 0.5 from the statistics; O1: each row's absmax is 127, so Δ = 1.
        let row0: [Float] = [0.25, 0.75, -0.75, 1.25, -1.25, 63.5, -63.5, 0]
        let row1: [Float] = [100, -100, -64, -63.75, 63.75, 2.5, -2.5, 0.5]
        let input: [Float] = policy == .O3 ? row0 + row1 : [127, 63.5, -0.5, 1.5, -2.5, 0.5, -127, 3.5]
            + [-127, 126.5, -126.5, 0.5, -1.5, 2.5, 100.5, -100.5]
        for target in QuantTarget.allCases {
            let t = SQTestGraph()
            let x = t.input("x", [.known(2), .known(8)])
            let y = t.op("MatMul", "fc", [x, t.randomConstant("w", shape: [8, 4], seed: 3)])
            t.output(y)
            var stats = CalibrationStatistics(fingerprint: ModelFingerprint.of(t.graph))
            stats["x"] = sqStatistics(rows: [[Float](repeating: 63.5, count: 8), [Float](repeating: -63.5, count: 8)])
            let model = t.model
            _ = try W8A8Quantizer(options: QuantizeOptions(policy: policy, weights: .perChannel, lmHead: true, target: target))
                .run(on: model.graph, statistics: stats)
            _ = try UpgradeOpset(options: PassOptions().setting(UpgradeOpset.to, Quantize.opset)).run(on: model, context: PassContext())
            let q = try #require(model.graph.nodes.first { $0.isOp("QuantizeLinear") }?.output(0))
            q.name = "codes"
            model.graph.outputs.append(q)
            try Verifier().verify(model)
            try SmoothQuantFixtures.write(model, to: dir + "/\(target.rawValue).onnx")
        }
        let script = """
            import sys, numpy as np, onnxruntime as ort
            x = np.array([\(input.map { "\($0)" }.joined(separator: ","))], np.float32).reshape(2, 8)
            runs = {t: ort.InferenceSession(f"{sys.argv[1]}/{t}.onnx", providers=["CPUExecutionProvider"]).run(None, {"x": x})
                    for t in ("qdq", "onnxruntime")}
            (y8, c8), (yu, cu) = runs["qdq"], runs["onnxruntime"]
            assert c8.dtype == np.int8 and cu.dtype == np.uint8, (c8.dtype, cu.dtype)
            shifted = cu.astype(np.int32) - 128
            print("int8 codes", c8.astype(np.int32).ravel().tolist())
            print("uint8 codes - 128", shifted.ravel().tolist())
            assert (shifted == c8.astype(np.int32)).all(), "codes differ"
            assert np.abs(y8 - yu).max() <= 1e-5 * max(1.0, float(np.abs(y8).max())), (y8, yu)
            print("OK")
            """
        let python = try #require(SmoothQuantFixtures.python)
        let (status, output) = try SmoothQuantFixtures.execute(python, ["-c", script, dir])
        #expect(status == 0, "\(policy): \(output)")
        #expect(output.contains("OK"))
        if policy == .O3 {
            // The planted values reach both ends of the int8 range.
            #expect(output.contains("-128") && output.contains("127"), "\(output)")
        }
        print("\(policy): \(output)")
    }
}
