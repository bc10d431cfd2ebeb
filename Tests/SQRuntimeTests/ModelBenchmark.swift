import Foundation
import SQIR
import SQONNX
import SQRuntime
import Testing

/// End-to-end fp32 timing of the real models with a per-op-type breakdown (from observer
/// timestamps), next to onnxruntime on the same file. A benchmark, not a test: runs only
/// with SQOPT_BENCH=1.
///
///     SQOPT_BENCH=1 SQOPT_THREADS=1 SQOPT_PYTHON=.venv/bin/python \
///         swift test --filter ModelBenchmark
@Suite(.serialized) struct ModelBenchmark {
    /// (model folder under build/real, input name -> shape of random token ids / ones)
    static let cases: [(String, [String: [Int]])] = [
        ("smollm2", ["input_ids": [1, 256]]),
        ("minilm", ["input_ids": [8, 128], "attention_mask": [8, 128], "token_type_ids": [8, 128]]),
    ]

    /// Extra causal-LM files (e.g. quantized SmolLM2) from SQOPT_BENCH_MODELS, comma separated,
    /// run with the SmolLM2 input shape.
    static let extraModels: [String] = ProcessInfo.processInfo.environment["SQOPT_BENCH_MODELS"]?
        .split(separator: ",").map(String.init) ?? []

    @Test(.enabled(if: InterpreterBenchmark.enabled), arguments: 0..<(2 + extraModels.count))
    func prefill(_ index: Int) throws {
        let (name, shapes) = index < 2 ? Self.cases[index] : (Self.extraModels[index - 2], Self.cases[0].1)
        let path = index < 2 ? NodeTestData.repositoryRoot.appendingPathComponent("build/real/\(name)/model.onnx").path : name
        guard FileManager.default.fileExists(atPath: path) else { return }
        let model = try ONNXDecoder().decode(file: path)
        let plan = try ExecutionPlan(model: model)
        var inputs: [String: Tensor] = [:]
        for input in model.graph.inputs where shapes[input.name] != nil {
            let shape = shapes[input.name] ?? []
            let count = shape.reduce(1, *)
            inputs[input.name] = Tensor(shape: shape, values: (0..<count).map { input.name == "input_ids" ? Int64(($0 * 7919) % 1000 + 5) : (input.name == "attention_mask" ? 1 : 0) })
        }
        var opOf: [String: String] = [:]
        for node in model.graph.nodes {
            var label = node.opType
            if node.opType == "MatMul", let b = node.input(1) {
                let int8Weight = b.producer.map { $0.opType == "DequantizeLinear" && $0.input(0)?.constant != nil } ?? false
                label += b.constant != nil ? " (fp32 weights)" : (int8Weight ? " (int8 weights)" : " (activations)")
            }
            for case let v? in node.outputs { opOf[v.name] = label }
        }

        _ = try plan.run(inputs: inputs)
        let runs = 5
        var totals: [Double] = []
        var perOp: [String: Double] = [:]
        for _ in 0..<runs {
            var last = DispatchTime.now().uptimeNanoseconds
            let start = last
            _ = try plan.run(inputs: inputs, observer: { value, _ in
                let now = DispatchTime.now().uptimeNanoseconds
                if let op = opOf[value] { perOp[op, default: 0] += Double(now - last) / 1e9 / Double(runs) }
                last = DispatchTime.now().uptimeNanoseconds
            })
            totals.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        let timed = totals.sorted()[runs / 2]
        let plain = try InterpreterBenchmark.median(runs) { _ = try plan.run(inputs: inputs) }
        var lines = [String(format: "%@ %@: sqopt %.1f ms (with observer %.1f ms), %d threads",
                            name, shapes.values.first.map { "\($0)" } ?? "", plain * 1e3, timed * 1e3, KernelThreads.defaultCount)]
        for (op, seconds) in perOp.sorted(by: { $0.value > $1.value }).prefix(12) {
            lines.append(String(format: "  %-22@ %8.2f ms  %5.1f%%", op, seconds * 1e3, seconds / timed * 100))
        }
        if let ort = Self.onnxruntimeSeconds(path: path, shapes: shapes) {
            lines.append(String(format: "  onnxruntime %.1f ms -> sqopt / onnxruntime time %.2f", ort * 1e3, plain / ort))
        }
        print(lines.joined(separator: "\n"))
    }

    static func onnxruntimeSeconds(path: String, shapes: [String: [Int]]) -> Double? {
        let python = ProcessInfo.processInfo.environment["SQOPT_PYTHON"]
            ?? NodeTestData.repositoryRoot.appendingPathComponent(".venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: python) else { return nil }
        let feeds = shapes.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ")
        let script = """
            import time, numpy as np, onnxruntime as ort
            ort.set_default_logger_severity(3)
            so = ort.SessionOptions(); so.intra_op_num_threads = \(KernelThreads.defaultCount); so.inter_op_num_threads = 1
            s = ort.InferenceSession("\(path)", so, providers=["CPUExecutionProvider"])
            shapes = {\(feeds)}
            feed = {}
            for i in s.get_inputs():
                if i.name not in shapes: continue
                shape = shapes[i.name]
                n = int(np.prod(shape))
                if i.name == "input_ids": v = (np.arange(n) * 7919) % 1000 + 5
                elif i.name == "attention_mask": v = np.ones(n)
                else: v = np.zeros(n)
                feed[i.name] = v.reshape(shape).astype(np.int64)
            s.run(None, feed)
            t = []
            for _ in range(5):
                t0 = time.perf_counter(); s.run(None, feed); t.append(time.perf_counter() - t0)
            print(sorted(t)[len(t) // 2])
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", script]
        let pipe = Pipe()
        process.standardOutput = pipe
        do { try process.run() } catch { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return Double(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
