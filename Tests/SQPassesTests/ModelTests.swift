import Foundation
import Testing
import SQIR
import SQONNX
import SQPasses

/// The passes and the IR text on real files: models/ (tools/make_models.py), the real MiniLM
/// and SmolLM2 builds (build/real, when present) and the ONNX backend node tests
/// (third_party_data/onnx-node-tests, when present). Numeric checks compare against
/// onnxruntime through the project's Python environment (.venv, when present).
enum ModelFiles {
    static let tinyModels = ["tiny-bert", "tiny-llama", "tiny-opt"]

    static func tiny(_ name: String) -> String { RepositoryPath.path("models/\(name)/model.onnx") }
    static func real(_ name: String) -> String { RepositoryPath.path("build/real/\(name)/model.onnx") }
    static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    static var python: String? {
        let path = RepositoryPath.path(".venv/bin/python")
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    static func load(_ path: String) throws -> Model { try ONNXDecoder().decode(file: path) }

    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sqopt-passes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Runs both models in onnxruntime (1 thread, graph optimizations off) on the inputs in
    /// `dataDirectory` and returns, per output, max|a - b| / max|b| with b the original's.
    static func onnxruntimeRelativeDifference(original: String, candidate: String, dataDirectory: String) throws -> [String: Double] {
        guard let python else { throw IRError(reason: "no .venv") }
        let script = """
            import glob, json, sys
            import numpy as np, onnx, onnxruntime as ort
            from onnx import numpy_helper
            original, candidate, data = sys.argv[1:4]
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            options.intra_op_num_threads = 1
            def run(path):
                session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
                names = [i.name for i in session.get_inputs()]
                feeds = {}
                for k, name in enumerate(names):
                    t = onnx.TensorProto()
                    t.ParseFromString(open(f"{data}/input_{k}.pb", "rb").read())
                    feeds[name] = numpy_helper.to_array(t)
                return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
            a, b = run(original), run(candidate)
            out = {}
            for name, ref in a.items():
                ref = ref.astype(np.float64); got = b[name].astype(np.float64)
                out[name] = float(np.max(np.abs(ref - got)) / max(float(np.max(np.abs(ref))), 1e-30))
            print(json.dumps(out))
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", script, original, candidate, dataDirectory]
        let pipe = Pipe(), errors = Pipe()
        process.standardOutput = pipe
        process.standardError = errors
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let json = try JSONSerialization.jsonObject(with: data) as? [String: Double] else {
            throw IRError(reason: "onnxruntime comparison failed: \(errorText)")
        }
        return json
    }
}

@Suite(.serialized) struct ModelTests {
    /// print(parse(print(m))) == print(m), with constants elided and (small models) in full.
    @Test(arguments: ModelFiles.tinyModels)
    func tinyModelsRoundTripThroughText(_ name: String) throws {
        let model = try ModelFiles.load(ModelFiles.tiny(name))
        let elided = IRPrinter().print(model)
        #expect(IRPrinter().print(try IRParser(allowElidedConstants: true).parseModel(elided)) == elided)
        let full = IRPrinter(maxConstantElements: .max)
        let text = full.print(model)
        let reparsed = try IRParser().parseModel(text)
        #expect(full.print(reparsed) == text)
        for (a, b) in zip(model.graph.initializers, reparsed.graph.initializers) {
            #expect(a.constant.map { t in b.constant.map { t.isIdentical(to: $0) } ?? false } == true, "\(a.name)")
        }
    }

    @Test(arguments: ["minilm", "smollm2"])
    func realModelsRoundTripThroughText(_ name: String) throws {
        guard ModelFiles.exists(ModelFiles.real(name)) else { return }
        let model = try ModelFiles.load(ModelFiles.real(name))
        let text = IRPrinter().print(model)
        #expect(IRPrinter().print(try IRParser(allowElidedConstants: true).parseModel(text)) == text)
    }

    /// Every backend node test model prints, parses and prints back identically.
    @Test func nodeTestModelsRoundTripThroughText() throws {
        let root = RepositoryPath.path("third_party_data/onnx-node-tests")
        guard let tests = try? FileManager.default.contentsOfDirectory(atPath: root) else { return }
        var checked = 0
        for test in tests.sorted() {
            let path = "\(root)/\(test)/model.onnx"
            guard let model = try? ModelFiles.load(path) else { continue }
            let text = IRPrinter().print(model)
            do {
                let again = IRPrinter().print(try IRParser(allowElidedConstants: true, file: path).parseModel(text))
                #expect(again == text, "\(test)")
            } catch {
                Issue.record("\(test): \(error)")
            }
            checked += 1
        }
        #expect(checked > 1000)
    }

    /// canonicalize-norms finds every norm: the decomposed ones in models/ and SmolLM2 (2 per
    /// layer + final), the LayerNormalization ops MiniLM already has (2 per layer + embeddings).
    @Test(arguments: [
        ("models/tiny-llama", 5, 0, 0), ("models/tiny-bert", 0, 1, 4), ("models/tiny-opt", 0, 0, 5),
        ("build/real/smollm2", 61, 0, 0), ("build/real/minilm", 0, 0, 13),
    ])
    func canonicalizeNormsFindsEveryNorm(_ folder: String, _ rms: Int, _ layerNorms: Int, _ existing: Int) throws {
        let path = RepositoryPath.path("\(folder)/model.onnx")
        guard ModelFiles.exists(path) else { return }
        let model = try ModelFiles.load(path)
        let report = try PassManager(pipeline: "canonicalize-norms,dce", registry: testRegistry).run(on: model)
        let statistics = try #require(report.records.first?.result.statistics)
        #expect(statistics[counter: "rms-norms"] == rms)
        #expect(statistics[counter: "layer-norms"] == layerNorms)
        #expect(statistics[counter: "existing-norms"] == existing)
        let remaining = model.graph.nodes.filter { $0.opType == "Sqrt" || $0.opType == "ReduceMean" }
        #expect(remaining.isEmpty, "\(remaining.map(\.name))")
    }

    static let cleanupPipelines = [
        "canonicalize-norms,fold-constants,shape-inference,dce",
        "upgrade-opset{to=21},shape-inference,canonicalize-norms,fold-constants,dce",
    ]

    /// The cleanup passes keep outputs within 1e-5 relative (onnxruntime on the written files).
    @Test(arguments: ModelFiles.tinyModels, cleanupPipelines)
    func cleanupKeepsTinyModelOutputs(_ name: String, _ pipeline: String) throws {
        guard ModelFiles.python != nil else { return }
        try checkEquivalence(ModelFiles.tiny(name), pipeline: pipeline)
    }

    @Test(arguments: ["minilm", "smollm2"])
    func cleanupKeepsRealModelOutputs(_ name: String) throws {
        guard ModelFiles.python != nil, ModelFiles.exists(ModelFiles.real(name)) else { return }
        try checkEquivalence(ModelFiles.real(name), pipeline: Self.cleanupPipelines[0])
    }

    func checkEquivalence(_ path: String, pipeline: String) throws {
        let model = try ModelFiles.load(path)
        try PassManager(pipeline: pipeline, registry: testRegistry).run(on: model)
        let dir = try ModelFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("model.onnx").path
        try ONNXEncoder(options: .init(externalData: true)).write(model, to: out)
        let data = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("test_data_set_0").path
        let differences = try ModelFiles.onnxruntimeRelativeDifference(original: path, candidate: out, dataDirectory: data)
        #expect(!differences.isEmpty)
        if ProcessInfo.processInfo.environment["SQOPT_SHOW_DIFFERENCES"] == "1" { print("DIFF", path, pipeline, differences, model.graph.nodes.count) }
        for (output, difference) in differences {
            #expect(difference <= 1e-5, "\(path) \(pipeline): output \(output) differs by \(difference) relative")
        }
    }
}
