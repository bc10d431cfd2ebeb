import Foundation
import SQIR
import Testing
@testable import SQONNX

/// decode → encode → decode gives the same graph, for every ONNX backend node-test model and
/// every shipped model; onnxruntime gives the same outputs on the re-encoded files.
@Suite struct RoundTripTests {
    /// Decodes `path`, re-encodes it in memory and decodes that again; returns the differences.
    static func roundTrip(_ path: String) throws -> (first: Model, bytes: [UInt8], differences: [String]) {
        let first = try ONNXDecoder().decode(file: path)
        let bytes = try ONNXEncoder().encode(first)
        let second = try ONNXDecoder().decode(bytes: bytes, fileName: path + " (re-encoded)",
                                              modelDirectory: ONNXDecoder.directory(of: path))
        return (first, bytes, differences(first, second))
    }

    @Test func everyNodeTestModelRoundTrips() throws {
        guard let root = nodeTestRoot() else {
            Issue.record("ONNX backend node tests not found in third_party_data/onnx-node-tests or .venv: run tools/setup.sh")
            return
        }
        let models = nodeTestModels(root)
        #expect(models.count >= 1765, "expected the 1765 node tests of onnx 1.22.0 in \(root.path)")
        var failures: [String] = []
        for url in models {
            do {
                let result = try Self.roundTrip(url.path)
                if !result.differences.isEmpty {
                    failures.append("\(url.path): " + result.differences.prefix(3).joined(separator: "; "))
                }
            } catch {
                failures.append("\(error)")
            }
        }
        #expect(failures.isEmpty, "\(failures.count) of \(models.count) failed:\n\(failures.prefix(20).joined(separator: "\n"))")
    }

    @Test func shippedModelsRoundTrip() throws {
        let models = shippedModels()
        #expect(!models.isEmpty, "no models under models/: run tools/make_models.py")
        for url in models {
            let result = try Self.roundTrip(url.path)
            #expect(result.differences.isEmpty, "\(url.path): \(result.differences.prefix(5))")
        }
    }

    /// Writes every node-test and shipped model re-encoded to a temporary folder and lets
    /// tools/roundtrip_check.py compare onnxruntime's outputs on both forms. With
    /// SQOPT_ROUNDTRIP_DIR set, the re-encoded files and pairs.tsv are kept in that folder.
    @Test func onnxruntimeGivesTheSameOutputs() throws {
        let python = repositoryRoot.appendingPathComponent(".venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: python) else {
            Issue.record("\(python) not found: run tools/setup.sh")
            return
        }
        guard let root = nodeTestRoot() else {
            Issue.record("ONNX backend node tests not found: run tools/setup.sh")
            return
        }
        let folder = try TemporaryFolder()
        let keep = ProcessInfo.processInfo.environment["SQOPT_ROUNDTRIP_DIR"]
        if let keep { try FileManager.default.createDirectory(atPath: keep, withIntermediateDirectories: true) }
        func file(_ name: String) -> String { keep.map { $0 + "/" + name } ?? folder.file(name) }
        var pairs: [String] = []
        for (index, url) in (nodeTestModels(root) + shippedModels()).enumerated() {
            let model = try ONNXDecoder().decode(file: url.path)
            let output = file("\(index).onnx")
            try ONNXEncoder().write(model, to: output)
            pairs.append("\(url.path)\t\(output)")
        }
        let list = file("pairs.tsv")
        try pairs.joined(separator: "\n").write(toFile: list, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [repositoryRoot.appendingPathComponent("tools/roundtrip_check.py").path, "--pairs", list]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let summary = output.split(separator: "\n").last.map(String.init) ?? ""
        print(summary)
        #expect(process.terminationStatus == 0, "tools/roundtrip_check.py failed:\n\(output.suffix(4000))")
    }

    @Test func unknownFieldsAndExtrasSurvive() throws {
        // Node metadata_props (9) and overload (8), a graph's metadata_props (16), a value's
        // metadata_props (4), an initializer's doc_string (12): fields SQIR does not model.
        var node = ProtoWriter()
        node.bytes = relu("x", "y", name: "relu")
        node.string(8, "fast")
        node.message(9) { $0.string(1, "k"); $0.string(2, "v") }
        var input = ProtoWriter()
        input.bytes = valueInfo("x")
        input.message(4) { $0.string(1, "ik"); $0.string(2, "iv") }
        var weight = ProtoWriter()
        weight.bytes = tensorProto("w", dims: [2], raw: floatBytes([1, 2]))
        weight.string(12, "a weight")
        var model = ProtoWriter()
        model.varint(F.irVersion, 8)
        model.message(F.opsetImport) { $0.string(1, ""); $0.varint(2, 17) }
        model.message(26) { $0.string(1, "device-config") }
        model.message(F.graph) { graph in
            graph.data(F.node, node.bytes)
            graph.string(F.graphName, "g")
            graph.data(F.initializer, weight.bytes)
            graph.data(F.input, input.bytes)
            graph.data(F.output, valueInfo("y"))
            graph.message(16) { $0.string(1, "gk"); $0.string(2, "gv") }
        }
        let folder = try TemporaryFolder()
        let path = try folder.write(model.bytes, to: "extras.onnx")
        let result = try Self.roundTrip(path)
        #expect(result.differences.isEmpty, "\(result.differences)")
        let decoded = result.first
        #expect(decoded.unknownFields.count > 0)
        #expect(decoded.graph.unknownFields.count > 0)
        #expect(decoded.graph.nodes.first?.unknownFields.count ?? 0 > 0)
        // The re-encoded file carries every byte of the original fields.
        for needle in ["fast", "device-config", "gv", "iv", "a weight"] {
            #expect(contains(result.bytes, Array(needle.utf8)), "lost '\(needle)'")
        }
    }

    @Test func externalDataRoundTripsAndStaysMapped() throws {
        let folder = try TemporaryFolder()
        let values = (0..<4096).map { Float($0) }
        let weight = tensorProto("w", dims: [4096], raw: floatBytes(values))
        let source = try folder.write(handBuiltModel(initializers: [weight]), to: "inline.onnx")
        let model = try ONNXDecoder().decode(file: source)
        let output = folder.file("external.onnx")
        try ONNXEncoder(options: .init(externalData: true)).write(model, to: output)
        #expect(FileManager.default.fileExists(atPath: output + ".data"))
        let reread = try ONNXDecoder().decode(file: output)
        #expect(differences(model, reread).isEmpty)
        let storage = try #require(reread.graph.initializers.first?.constant?.storage)
        #expect(storage.owner is MappedRange, "external tensors are borrowed from the mapping")
        // And back to a single file.
        let inline = folder.file("inline-again.onnx")
        try ONNXEncoder().write(reread, to: inline)
        #expect(differences(model, try ONNXDecoder().decode(file: inline)).isEmpty)
    }
}

func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard needle.count <= haystack.count else { return false }
    for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
        if Array(haystack[start..<start + needle.count]) == needle { return true }
    }
    return false
}
