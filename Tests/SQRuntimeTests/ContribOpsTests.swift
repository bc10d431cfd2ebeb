import Foundation
import SQIR
import SQONNX
import SQRuntime
import Testing

/// onnxruntime contrib ops (`com.microsoft`) and their default-domain twins, one node each,
/// against onnxruntime's outputs: tools/contrib_ops_check.py writes the models and the
/// reference outputs at test time ($SQOPT_PYTHON, else the package's .venv).
@Suite struct ContribOpsTests {
    static var python: String? {
        if let env = ProcessInfo.processInfo.environment["SQOPT_PYTHON"], !env.isEmpty { return env }
        let venv = NodeTestData.repositoryRoot.appendingPathComponent(".venv/bin/python").path
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : nil
    }

    static let cases = [
        "skip_simplified_layer_norm", "skip_simplified_layer_norm_bias", "skip_layer_norm",
        "skip_layer_norm_no_beta", "simplified_layer_norm_onnx", "layer_norm_stash",
        "fast_gelu", "fast_gelu_no_bias", "bias_gelu",
        "rotary_embedding_3d", "rotary_embedding_4d_interleaved", "rotary_embedding_offset",
        "rotary_embedding_partial", "rotary_embedding_onnx23",
        "matmul_nbits", "matmul_nbits_zero_points_bias",
    ]

    @Test func againstOnnxruntime() throws {
        guard let python = Self.python else {
            Issue.record("no Python with onnxruntime: set SQOPT_PYTHON or run tools/setup.sh")
            return
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sqopt-contrib-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [NodeTestData.repositoryRoot.appendingPathComponent("tools/contrib_ops_check.py").path, dir.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let log = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "contrib_ops_check.py failed:\n\(log)")
        for name in Self.cases {
            let error = try ModelEquivalenceTests.check(dir.appendingPathComponent(name), tolerance: 2e-6, label: name)
            #expect(error <= 2e-6, "\(name)")
        }
    }

    /// The com.microsoft spelling of SimplifiedLayerNormalization (onnxruntime registers only
    /// the default-domain one) gives the default-domain op's result.
    @Test func simplifiedLayerNormBothDomains() throws {
        func run(domain: String) throws -> [Double] {
            let t = TestGraph()
            let x = t.input("x", .float, [.known(2), .known(4)])
            let gamma = t.constant("gamma", floats([4], [1, 2, 0.5, -1]))
            let y = t.node("SimplifiedLayerNormalization", [x, gamma], name: "norm", domain: domain)[0]
            t.output(y)
            let model = Model(graph: t.graph, opsetImports: [OpsetImport(domain: "", version: 17),
                                                            OpsetImport(domain: "com.microsoft", version: 1)])
            let out = try ExecutionPlan(model: model).run(inputs: ["x": floats([2, 4], [1, -2, 3, 0.5, 0, 0, 4, -4])])
            return try #require(out["norm"]).doubleValues()
        }
        #expect(try run(domain: "com.microsoft") == run(domain: ""))
    }
}
