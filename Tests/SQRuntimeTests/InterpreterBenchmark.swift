import Foundation
import SQIR
import SQRuntime
import Testing

/// fp32 MatMul M512 K768 N3072 (a BERT-base FFN up-projection) three ways in one run:
/// the kernel alone (`gemmF32` on packed weights), the same product through an
/// `ExecutionPlan` (the interpreter's overhead: input checks, output allocation, dispatch),
/// and onnxruntime on the same one-node model. A benchmark, not a test: it runs only with
/// SQOPT_BENCH=1 and asserts nothing.
///
///     SQOPT_BENCH=1 SQOPT_PYTHON=.venv/bin/python swift test --filter InterpreterBenchmark
///
/// Threads: SQOPT_THREADS (kernels) and the same count for onnxruntime's intra-op pool.
@Suite struct InterpreterBenchmark {
    static let enabled = ProcessInfo.processInfo.environment["SQOPT_BENCH"] != nil

    static func median(_ runs: Int, _ body: () throws -> Void) rethrows -> Double {
        var times: [Double] = []
        for _ in 0..<runs {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return times.sorted()[times.count / 2]
    }

    @Test(.enabled(if: enabled)) func matmulOverhead() throws {
        let (m, k, n) = (512, 768, 3072)
        var rng = SystemRandomNumberGenerator()
        let xValues = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &rng) }
        let wValues = (0..<(k * n)).map { _ in Float.random(in: -0.05...0.05, using: &rng) }
        let graph = Graph(name: "bench")
        let x = Value(name: "x", type: TensorType(.float, [.symbolic("m"), .known(k)]))
        let w = Value(name: "w", constant: Tensor(shape: [k, n], values: wValues))
        let y = Value(name: "y")
        graph.inputs = [x]
        graph.initializers = [w]
        graph.append(Node("MatMul", name: "mm", inputs: [x, w], outputs: [y]))
        graph.outputs = [y]
        let plan = try ExecutionPlan(model: Model(graph: graph, opsetImports: [OpsetImport(domain: "", version: 17)]))
        let input = Tensor(shape: [m, k], values: xValues)
        let threads = KernelThreads.defaultCount

        let packed = try PackedFloat32Weights(k: k, n: n, values: wValues)
        var out = [Float](repeating: 0, count: m * n)
        let runs = 30
        _ = try plan.run(inputs: ["x": input])
        let kernel = try xValues.withUnsafeBufferPointer { a in
            try out.withUnsafeMutableBufferPointer { o in
                try Self.median(runs) { try gemmF32(a: a, m: m, b: packed, out: o) }
            }
        }
        let interpreter = try Self.median(runs) { _ = try plan.run(inputs: ["x": input]) }
        let flops = 2.0 * Double(m * n * k)
        var lines = [String(format: "MatMul %dx%dx%d, %d thread(s):", m, k, n, threads),
                     String(format: "  sqopt kernel       %7.3f ms  %6.1f GFLOPS", kernel * 1e3, flops / kernel / 1e9),
                     String(format: "  sqopt interpreter  %7.3f ms  %6.1f GFLOPS  (overhead %+.3f ms, %.1f%%)",
                            interpreter * 1e3, flops / interpreter / 1e9, (interpreter - kernel) * 1e3,
                            (interpreter / kernel - 1) * 100)]
        if let ort = Self.onnxruntimeSeconds(m: m, k: k, n: n, threads: threads, runs: runs) {
            lines.append(String(format: "  onnxruntime        %7.3f ms  %6.1f GFLOPS", ort * 1e3, flops / ort / 1e9))
            lines.append(String(format: "  interpreter / onnxruntime speed: %.2fx", ort / interpreter))
        } else {
            lines.append("  onnxruntime: not measured (set SQOPT_PYTHON to a Python with onnxruntime)")
        }
        print(lines.joined(separator: "\n"))
    }

    /// Median seconds of onnxruntime running the same one-MatMul model, or nil.
    static func onnxruntimeSeconds(m: Int, k: Int, n: Int, threads: Int, runs: Int) -> Double? {
        let python = ProcessInfo.processInfo.environment["SQOPT_PYTHON"]
            ?? NodeTestData.repositoryRoot.appendingPathComponent(".venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: python) else { return nil }
        let script = """
            import time, numpy as np, onnx, onnxruntime as ort
            from onnx import helper, TensorProto, numpy_helper
            m, k, n, threads, runs = \(m), \(k), \(n), \(threads), \(runs)
            rng = np.random.default_rng(0)
            w = numpy_helper.from_array(rng.uniform(-0.05, 0.05, (k, n)).astype(np.float32), "w")
            g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "bench",
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["m", k])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m", n])], [w])
            model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
            so = ort.SessionOptions(); so.intra_op_num_threads = threads; so.inter_op_num_threads = 1
            s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
            x = rng.uniform(-1, 1, (m, k)).astype(np.float32)
            s.run(None, {"x": x})
            t = []
            for _ in range(runs):
                t0 = time.perf_counter(); s.run(None, {"x": x}); t.append(time.perf_counter() - t0)
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
