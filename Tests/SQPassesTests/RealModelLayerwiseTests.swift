import Foundation
import SQIR
import SQONNX
import SQRuntime
import Testing
@testable import SQPasses

/// sqopt's int8 interpreter against onnxruntime on the real models (build/real; skipped when
/// absent), on the QDQ file the CLI writes (`sqopt --passes calibrate,smooth,quantize{…}`).
///
/// End to end, a deep model cannot be held to 1e-3: a 1-ulp difference in a float activation
/// that lands on a rounding tie of a quantizer flips one int8 value, and the layers after it
/// amplify the flip (onnxruntime's optimized and unoptimized sessions differ by 6.5–29% relative
/// L2 on SmolLM2's logits). So the criterion is teacher-forced, per layer: `tools/layerwise_check.py bank` runs
/// the whole model once in onnxruntime, cuts every quantized MatMul (with its Q/DQ chains,
/// scale computation, weights and scales) into one "layer bank" model of independent islands,
/// and saves the captured float inputs and onnxruntime's outputs; here the interpreter runs the
/// bank on the same inputs through its int8 kernels and every layer must agree within 1e-3
/// relative L2 (measured: ≤ 3e-7). End to end, the test checks what users see: sqopt's
/// accuracy against fp32 (cosine, top-1, KL) agrees with onnxruntime's on the same file.
/// docs/crosscheck.md has the full matrix (`tools/layerwise_check.py matrix`) and the reasons.
@Suite(.enabled(if: SmoothQuantFixtures.hasPython, "needs .venv (tools/setup.sh)"), .serialized)
struct RealModelLayerwiseTests {
    struct Case: Sendable, CustomStringConvertible {
        let model: String
        let policy: String
        let weights: String
        var bmm = false
        let linears: Int
        let bmms: Int
        /// Also compare with the numpy reference (tools/fakequant_reference.py).
        var reference = false
        /// quantize's ONNX form.
        var target = "qdq"
        /// The LM head in int8 (quantize's default).
        var lmHead = true
        /// The smooth step (default: smooth's defaults).
        var smooth = "smooth"

        var quantize: String {
            "quantize{policy=\(policy),weights=\(weights),target=\(target)\(bmm ? ",bmm=true" : "")\(lmHead ? "" : ",lm-head=false")}"
        }
        var description: String { "\(model) \(quantize)" }
    }

    /// A subset that fits the default suite's budget; `tools/layerwise_check.py matrix` runs
    /// every policy × weight granularity (and O1/O3 with bmm=true) on both models.
    static let cases = [
        Case(model: "minilm", policy: "O2", weights: "per-tensor", linears: 36, bmms: 0, reference: true),
        Case(model: "minilm", policy: "O3", weights: "per-tensor", bmm: true, linears: 36, bmms: 12, reference: true,
             target: "onnxruntime"),
        Case(model: "smollm2", policy: "O1", weights: "per-channel", bmm: true, linears: 211, bmms: 60),
        // The default before 2026-12-03 here (norm groups only, LM head float): with down_proj
        // smoothed, O3's static per-tensor scale rounds most of a layer's inputs to a few codes,
        // and a 1% input change moved that layer by only 7e-4, below the tolerance the nudge
        // check must separate from (the case above covers the default smoothing and LM head).
        Case(model: "smollm2", policy: "O3", weights: "per-tensor", linears: 210, bmms: 0, lmHead: false,
             smooth: "smooth{scope=norms}"),
    ]

    /// Largest relative L2 of a layer's output, sqopt against onnxruntime on the same input.
    static let layerTolerance = 1e-3
    /// Against the numpy reference, which calibrates and smooths on its own (onnxruntime
    /// statistics): its scales differ from sqopt's in the last bits, so a few values round the
    /// other way (measured ≤ 1.7e-3 on SmolLM2 O3, ≤ 6e-4 on MiniLM).
    static let referenceTolerance = 1e-2

    @Test(arguments: cases)
    func everyQuantizedLayerMatchesOnnxruntime(_ c: Case) throws {
        guard SmoothQuantFixtures.hasReal(c.model) else { return }
        let folder = SmoothQuantFixtures.real(c.model)
        let sample = folder + "/test_data_set_0"
        let dir = try SmoothQuantFixtures.temporaryDirectory()
        defer { SmoothQuantFixtures.cleanUp(dir) }
        let clock = ContinuousClock()
        let start = clock.now

        // The model, as a user makes it.
        let binary = try Self.sqoptBinary()
        let qdq = dir + "/model.int8.onnx"
        let optimize = try SmoothQuantFixtures.execute(binary, ["--passes", "calibrate,\(c.smooth),\(c.quantize)", "--calib", sample,
                                                 folder + "/model.onnx", "-o", qdq, "-q"])
        try #require(optimize.status == 0, "\(optimize.output)")

        // The layer bank, its inputs and onnxruntime's outputs (and the reference's).
        let bank = dir + "/bank"
        var arguments = ["bank", qdq, "--data", sample, "--work", bank]
        if c.reference {
            arguments += ["--reference", folder + "/model.onnx", "--calib", sample, "--policy", c.policy,
                          "--weights", c.weights] + (c.bmm ? ["--bmm"] : [])
        }
        let made = try SmoothQuantFixtures.runTool("layerwise_check.py", arguments)
        try #require(made.status == 0, "\(made.output)")
        let info = try Self.json(bank + "/layers.json")
        let layers = try #require(info["layers"] as? [[String: Any]])
        let inputNames = try #require(info["inputs"] as? [String])
        #expect(layers.filter { $0["kind"] as? String == "linear" }.count == c.linears, "\(c)")
        #expect(layers.filter { $0["kind"] as? String == "bmm" }.count == c.bmms, "\(c)")
        // onnxruntime on the bank reproduces the whole model's values: the cut kept everything.
        let cut = layers.compactMap { $0["bank_vs_model"] as? Double }.max() ?? .infinity
        #expect(cut == 0, "\(c): the bank differs from the whole model by \(cut)")

        // The interpreter runs every island through the int8 kernels: no Q or DQ is a step.
        let model = try SmoothQuantFixtures.load(bank + "/bank.onnx")
        let plan = try ExecutionPlan(model: model)
        let computed = Set(plan.computedValueNames)
        let qdqValues = model.graph.nodes.filter { $0.isOp("QuantizeLinear") || $0.isOp("DequantizeLinear") }
            .compactMap { $0.output(0)?.name }
        #expect(qdqValues.count >= layers.count + c.linears)
        let unfused = qdqValues.filter(computed.contains)
        #expect(unfused.isEmpty, "\(c): Q/DQ run as float steps: \(unfused.prefix(4))")
        let floatPlan = try ExecutionPlan(model: model, options: PlanOptions(lowerInt8: false))
        #expect(plan.stepCount < floatPlan.stepCount)

        var inputs: [String: Tensor] = [:]
        for (k, name) in inputNames.enumerated() {
            inputs[name] = try ONNXDecoder().decodeTensor(file: bank + "/test_data_set_0/input_\(k).pb").tensor
        }
        let outputs = try plan.run(inputs: inputs)
        var worst = (0.0, ""), worstReference = 0.0
        for layer in layers {
            let name = try #require(layer["output"] as? String)
            let got = try #require(outputs[name])
            let ort = try NpyReader.read(path: bank + "/ort/\(Self.fileName(name)).npy")
            #expect(got.shape == ort.shape)
            let rel = SmoothQuantRealModelTests.relativeL2(got, ort)
            #expect(rel <= Self.layerTolerance, "\(c) \(layer["name"] ?? name): sqopt vs onnxruntime relative L2 \(rel)")
            if rel > worst.0 { worst = (rel, layer["name"] as? String ?? name) }
            if c.reference {
                let ref = try NpyReader.read(path: bank + "/reference/\(Self.fileName(name)).npy")
                let r = SmoothQuantRealModelTests.relativeL2(got, ref)
                #expect(r <= Self.referenceTolerance, "\(c) \(name): sqopt vs the numpy reference relative L2 \(r)")
                worstReference = max(worstReference, r)
            }
        }

        // The tolerance separates: 1% more input moves every layer beyond it (≥ 1e-2, but 3.7e-3
        // on SmolLM2 O3 per-tensor).
        var nudged: [String: Tensor] = [:]
        for (name, t) in inputs { nudged[name] = Tensor(shape: t.shape, values: t.elements(as: Float.self).map { $0 * 1.01 }) }
        let moved = try plan.run(inputs: nudged)
        var least = Double.infinity
        for layer in layers {
            let name = try #require(layer["output"] as? String)
            least = min(least, SmoothQuantRealModelTests.relativeL2(try #require(moved[name]), try #require(outputs[name])))
        }
        #expect(least > Self.layerTolerance, "\(c): a 1% input change moved some layer by only \(least)")
        print("\(c): \(layers.count) layers, int8 plan \(plan.stepCount) steps (float path \(floatPlan.stepCount)); worst sqopt vs onnxruntime \(worst.0) at \(worst.1)"
              + (c.reference ? "; worst vs numpy reference \(worstReference)" : "") + "; 1% input change ≥ \(least)")

        try Self.endToEnd(c, binary: binary, fp32: folder + "/model.onnx", qdq: qdq, sample: sample, dir: dir)
        print("\(c): \(clock.now - start)")
    }

    /// `quantize{target=onnxruntime}` against `{target=qdq}`: the two files of one model and
    /// calibration, cut into layer banks, and onnxruntime on the onnxruntime-target bank fed the
    /// QDQ bank's captured activations, unoptimized (the ONNX definition) and optimized (the
    /// fused u8×s8 kernels users get): every layer within the same 1e-3.
    @Test(arguments: [("minilm", "O3", "per-tensor", true), ("smollm2", "O1", "per-channel", false)])
    func onnxruntimeTargetMatchesTheQDQFormLayerByLayer(_ model: String, _ policy: String, _ weights: String, _ bmm: Bool) throws {
        guard SmoothQuantFixtures.hasReal(model) else { return }
        let folder = SmoothQuantFixtures.real(model)
        let sample = folder + "/test_data_set_0"
        let dir = try SmoothQuantFixtures.temporaryDirectory()
        defer { SmoothQuantFixtures.cleanUp(dir) }
        let binary = try Self.sqoptBinary()
        let stats = dir + "/stats.json"
        let calibrated = try SmoothQuantFixtures.execute(binary, ["--passes", "calibrate", "--calib", folder + "/calib", folder + "/model.onnx",
                                                                  "--save-calib", stats, "-o", dir + "/unused.onnx", "-q"])
        try #require(calibrated.status == 0, "\(calibrated.output)")
        for target in ["qdq", "onnxruntime"] {
            let spec = "smooth,quantize{policy=\(policy),weights=\(weights),target=\(target)\(bmm ? ",bmm=true" : "")}"
            let made = try SmoothQuantFixtures.execute(binary, ["--passes", spec, "--load-calib", stats, folder + "/model.onnx",
                                                                "-o", dir + "/\(target).onnx", "-q"])
            try #require(made.status == 0, "\(made.output)")
            let bank = try SmoothQuantFixtures.runTool("layerwise_check.py", ["bank", dir + "/\(target).onnx", "--data", sample, "--work", dir + "/bank-\(target)"])
            try #require(bank.status == 0, "\(bank.output)")
        }
        let target = try Self.json(dir + "/bank-onnxruntime/layers.json")
        let ops = try #require(target["ops"] as? [String: Int])
        // A constant uint8 zero point, or per token `Expand(128, Shape(Δ))` (QDQForms.quantizedByDelta).
        let uint8 = try SmoothQuantFixtures.load(dir + "/onnxruntime.onnx").graph.nodes.filter { n in
            guard n.isOp("QuantizeLinear"), let zp = n.input(2) else { return false }
            if let expand = zp.producer, expand.isOp(QDQForms.expandOp) { return expand.input(0)?.constant?.dtype == .uint8 }
            return zp.constant?.dtype == .uint8
        }
        #expect(!uint8.isEmpty && uint8.count == ops["QuantizeLinear"], "every activation Q of the target is uint8: \(uint8.count) of \(ops)")
        for optimize in [false, true] {
            let (status, output) = try SmoothQuantFixtures.runTool("layerwise_check.py",
                ["compare", dir + "/bank-qdq", dir + "/bank-onnxruntime", "--rtol", String(Self.layerTolerance), "--json", dir + "/compare.json"]
                + (optimize ? ["--optimize"] : []))
            #expect(status == 0, "\(model) \(policy) optimize=\(optimize): \(output)")
            let worst = try #require(try Self.json(dir + "/compare.json")["worst"] as? Double)
            print("\(model) \(policy) \(weights)\(bmm ? " bmm" : ""): onnxruntime on the target form vs the QDQ form, per layer (optimized: \(optimize)) worst \(worst)")
        }
    }

    /// End to end on the same file and sample. The two runtimes' outputs differ by about as much
    /// as quantization noise itself (rounding ties flip int8 values, and the flips spread), so
    /// what is held is what users see: sqopt's accuracy against fp32 agrees with onnxruntime's.
    static func endToEnd(_ c: Case, binary: String, fp32: String, qdq: String, sample: String, dir: String) throws {
        let (status, output) = try SmoothQuantFixtures.runTool("layerwise_check.py",
            ["e2e", fp32, qdq, "--data", sample, "--work", dir + "/e2e", "--sqopt", binary, "--json", dir + "/e2e.json"])
        try #require(status == 0, "\(output)")
        let rows = try json(dir + "/e2e.json")
        #expect(!rows.isEmpty)
        for (name, value) in rows {
            let row = try #require(value as? [String: Any])
            let ort = try #require(row["ort"] as? [String: Double]), opt = try #require(row["ort_opt"] as? [String: Double])
            let sq = try #require(row["sqopt"] as? [String: Double])
            let sqVsOrt = try #require(row["sqopt_vs_ort"] as? Double), optVsOrt = try #require(row["ort_opt_vs_ort"] as? Double)
            // sqopt is closer to onnxruntime than onnxruntime is to fp32 (measured ≤ 0.87 of it
            // with the LM head float and norm groups only; onnxruntime's optimized session:
            // ≤ 0.83), or no further than 1.5 times onnxruntime's optimized session is from
            // its plain one: with the default smoothing the quantization error is smaller
            // (SmolLM2 O1 bmm: 0.053) while tie flips move the logits as much as before
            // (sqopt 0.064, onnxruntime's own optimized session 0.055).
            let quantizationError = try #require(ort["rel_l2"])
            #expect(sqVsOrt < max(quantizationError, 1.5 * optVsOrt),
                    "\(c) \(name): sqopt vs onnxruntime \(sqVsOrt), onnxruntime vs fp32 \(quantizationError), optimized vs not \(optVsOrt)")
            for (metric, tolerance) in E2ETolerance.metrics {
                guard let a = sq[metric], let b = ort[metric], let o = opt[metric] else { continue }
                let allowed = max(tolerance(b), E2ETolerance.spread * abs(o - b))
                #expect(abs(a - b) <= allowed, "\(c) \(name) \(metric) vs fp32: sqopt \(a), onnxruntime \(b) (optimized \(o)); allowed ±\(allowed)")
            }
            print("\(c) \(name) end to end: sqopt vs onnxruntime \(sqVsOrt) (onnxruntime optimized vs not \(optVsOrt)); vs fp32 sqopt \(sq), onnxruntime \(ort), onnxruntime optimized \(opt)")
        }
    }

    /// End-to-end tolerances on a metric against fp32, given onnxruntime's value, chosen from
    /// `tools/layerwise_check.py matrix` (docs/crosscheck.md): largest differences measured
    /// there, sqopt vs onnxruntime: 6.4% of 1 − cosine, 7.2% of KL, 3.7 points of top-1
    /// (onnxruntime's optimized session: 9.4%, 5.0%, 4.4 points). One 31-token sample moves
    /// top-1 in steps of 3.2 points, hence the floors.
    enum E2ETolerance {
        /// …or this multiple of onnxruntime's own optimized-vs-unoptimized difference.
        static let spread = 3.0
        static let metrics: [(String, @Sendable (Double) -> Double)] = [
            ("cosine", { 0.1 * (1 - $0) + 0.002 }), ("kl", { 0.1 * $0 + 0.005 }), ("top1", { _ in 0.1 }),
        ]
    }

    static func json(_ path: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// The name `sqopt run --output-dir` and the tool give an output's .npy file.
    static func fileName(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." ? $0 : "_" })
    }

    /// The `sqopt` binary `swift build --build-tests` builds beside the test bundle.
    static func sqoptBinary() throws -> String {
        var candidates: [String] = []
        if let exe = Bundle.main.executableURL {
            var dir = exe.deletingLastPathComponent()
            for _ in 0..<4 {
                candidates.append(dir.appendingPathComponent("sqopt").path)
                dir = dir.deletingLastPathComponent()
            }
        }
        candidates.append(SmoothQuantFixtures.repo.appendingPathComponent(".build/debug/sqopt").path)
        guard let found = candidates.first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw IRError(reason: "sqopt binary not found (tried \(candidates)): run `swift build --build-tests`")
        }
        return found
    }
}
