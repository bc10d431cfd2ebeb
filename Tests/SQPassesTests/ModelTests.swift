import Foundation
import Testing
import SQIR
import SQONNX
import SQPasses
import SQRuntime

/// The passes and the IR text on real files: models/ (tools/make_models.py), the real MiniLM
/// and SmolLM2 builds (build/real, when present) and the ONNX backend node tests
/// (third_party_data/onnx-node-tests, when present). Numeric checks compare against
/// onnxruntime through the project's Python environment (.venv, when present).
enum ModelFiles {
    static let tinyModels = ["tiny-bert", "tiny-llama", "tiny-opt"]

    static func tiny(_ name: String) -> String { RepositoryPath.path("models/\(name)/model.onnx") }
    static func real(_ name: String) -> String { RepositoryPath.path("build/real/\(name)/model.onnx") }
    static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    static var python: String? { SmoothQuantFixtures.python }

    static func load(_ path: String) throws -> Model { try ONNXDecoder().decode(file: path) }

    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sqopt-passes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Runs a Python script with the venv's python; returns stdout and stderr.
    static func runPython(_ script: String, _ arguments: [String]) throws -> String {
        guard let python else { throw IRError(reason: "no .venv") }
        return try SmoothQuantFixtures.execute(python, ["-c", script] + arguments).output
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

    /// Every cleanup pass runs on every backend node-test model without crashing and leaves IR
    /// the verifier accepts; upgrade-opset may refuse (with an error naming the node), never
    /// leave a half-upgraded model.
    @Test func cleanupPassesSurviveEveryNodeTest() throws {
        let root = RepositoryPath.path("third_party_data/onnx-node-tests")
        guard let tests = try? FileManager.default.contentsOfDirectory(atPath: root) else { return }
        var refused = 0, upgraded = 0
        for test in tests.sorted() {
            let path = "\(root)/\(test)/model.onnx"
            guard let model = try? ModelFiles.load(path) else { continue }
            do {
                try PassManager(pipeline: "shape-inference,canonicalize-norms,fold-constants,dce", registry: testRegistry).run(on: model)
            } catch {
                Issue.record("\(test): \(error)")
            }
            let before = IRPrinter().print(model)
            do {
                try PassManager(pipeline: "upgrade-opset{to=23}", registry: testRegistry).run(on: model)
                upgraded += 1
            } catch {
                refused += 1; if ProcessInfo.processInfo.environment["SQOPT_SHOW_REFUSALS"] == "1" { print("REFUSED", test, error) }
                #expect(IRPrinter().print(model) == before, "\(test): a refused upgrade changed the model")
            }
        }
        #expect(upgraded > 1000, "upgraded \(upgraded), refused \(refused)")
    }

    /// Node tests below opset 21 that upgrade-opset rewrites still give onnxruntime's results
    /// for the original (and the expected outputs) after the upgrade to 21.
    @Test func upgradedNodeTestsKeepTheirOutputs() throws {
        let root = RepositoryPath.path("third_party_data/onnx-node-tests")
        guard ModelFiles.python != nil, let tests = try? FileManager.default.contentsOfDirectory(atPath: root) else { return }
        let dir = try ModelFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var lines: [String] = []
        for test in tests.sorted() {
            let path = "\(root)/\(test)/model.onnx"
            guard let model = try? ModelFiles.load(path), (model.opsetVersion() ?? 99) < 21,
                  let report = try? PassManager(pipeline: "upgrade-opset{to=21}", registry: testRegistry).run(on: model),
                  (report.records.first?.result.statistics.nodesRewritten ?? 0) > 0 else { continue }
            let out = dir.appendingPathComponent("\(test).onnx").path
            try ONNXEncoder().write(model, to: out)
            lines.append([path, out, "\(root)/\(test)/test_data_set_0"].joined(separator: "\t"))
        }
        let list = dir.appendingPathComponent("cases.tsv").path
        try lines.joined(separator: "\n").write(toFile: list, atomically: true, encoding: .utf8)
        let result = try ModelFiles.runPython(Self.compareNodeTests, [list])
        let lastLine = result.split(separator: "\n").last.map(String.init) ?? ""
        #expect(!result.contains("MISMATCH"), "\(result)")
        let compared = Int(lastLine.dropFirst("compared ".count)) ?? 0
        #expect(lastLine.hasPrefix("compared ") && compared >= 30, "\(result)")
        if ProcessInfo.processInfo.environment["SQOPT_SHOW_DIFFERENCES"] == "1" { print("UPGRADED", lines.count, lastLine) }
    }

    static let compareNodeTests = """
        import glob, sys
        import numpy as np, onnx, onnxruntime as ort
        from onnx import numpy_helper
        def load(path):
            t = onnx.TensorProto(); t.ParseFromString(open(path, "rb").read()); return numpy_helper.to_array(t)
        def run(path, data):
            options = ort.SessionOptions(); options.intra_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            feeds = {i.name: load(f"{data}/input_{k}.pb") for k, i in enumerate(session.get_inputs())}
            return session.run(None, feeds)
        compared = 0
        for line in open(sys.argv[1]).read().splitlines():
            original, candidate, data = line.split("\\t")
            try:
                reference = run(original, data)
            except Exception:
                continue
            try:
                got = run(candidate, data)
            except Exception as e:
                print("MISMATCH", candidate, "does not run:", str(e).splitlines()[0]); continue
            for k, (a, b) in enumerate(zip(reference, got)):
                if a.dtype.kind in "fc" and not np.allclose(a, b, rtol=1e-3, atol=1e-7, equal_nan=True) or \\
                   a.dtype.kind not in "fc" and not np.array_equal(a, b):
                    print("MISMATCH", candidate, "output", k)
            compared += 1
        print(f"compared {compared}")
        """

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

    /// The interpreter gives the same outputs (1e-5 relative) before and after the passes,
    /// on every test_data_set of the model.
    @Test(arguments: ModelFiles.tinyModels, cleanupPipelines)
    func cleanupKeepsInterpreterOutputs(_ name: String, _ pipeline: String) throws {
        try checkInterpreterEquivalence(ModelFiles.tiny(name), pipeline: pipeline, sets: 4)
    }

    @Test(arguments: ["minilm", "smollm2"])
    func cleanupKeepsRealModelInterpreterOutputs(_ name: String) throws {
        guard ModelFiles.exists(ModelFiles.real(name)) else { return }
        try checkInterpreterEquivalence(ModelFiles.real(name), pipeline: Self.cleanupPipelines[0], sets: 1)
    }

    func checkInterpreterEquivalence(_ path: String, pipeline: String, sets: Int) throws {
        let name = URL(fileURLWithPath: path).deletingLastPathComponent().lastPathComponent
        let original = try ModelFiles.load(path)
        let transformed = try ModelFiles.load(path)
        try PassManager(pipeline: pipeline, registry: testRegistry).run(on: transformed)
        let before = try ExecutionPlan(model: original), after = try ExecutionPlan(model: transformed)
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        for set in 0..<sets {
            var inputs: [String: Tensor] = [:]
            for (k, name) in before.inputNames.enumerated() {
                let file = folder.appendingPathComponent("test_data_set_\(set)/input_\(k).pb").path
                inputs[name] = try ONNXDecoder().decodeTensor(file: file).tensor
            }
            let expected = try before.run(inputs: inputs), got = try after.run(inputs: inputs)
            for (output, reference) in expected {
                let a = reference.doubleValues(), b = got[output]?.doubleValues() ?? []
                let scale = max(a.map(abs).max() ?? 0, 1e-30)
                let difference = zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
                #expect(a.count == b.count && difference / scale <= 1e-5, "\(name) \(pipeline) set \(set) \(output): \(difference / scale)")
            }
        }
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
