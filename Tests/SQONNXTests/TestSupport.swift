import Foundation
import SQIR
@testable import SQONNX

/// The repository root (this file is Tests/SQONNXTests/TestSupport.swift).
let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A fresh temporary folder, removed when the object goes away.
final class TemporaryFolder {
    let url: URL
    var path: String { url.path }

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("sqonnx-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func file(_ name: String) -> String { url.appendingPathComponent(name).path }

    func write(_ bytes: [UInt8], to name: String) throws -> String {
        let path = file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Names in the folder (hidden ones included).
    func contents() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).sorted()
    }
}

/// Builds protobuf bytes by hand, for files the encoder would never write (bad input).
struct ProtoWriter {
    var bytes: [UInt8] = []

    mutating func varint(_ field: Int, _ value: Int64) {
        appendVarint(UInt64(field << 3), to: &bytes)
        appendVarint(UInt64(bitPattern: value), to: &bytes)
    }

    mutating func data(_ field: Int, _ payload: [UInt8]) {
        appendVarint(UInt64(field << 3 | 2), to: &bytes)
        appendVarint(UInt64(payload.count), to: &bytes)
        bytes += payload
    }

    mutating func string(_ field: Int, _ text: String) { data(field, Array(text.utf8)) }

    mutating func message(_ field: Int, _ build: (inout ProtoWriter) -> Void) {
        var inner = ProtoWriter()
        build(&inner)
        data(field, inner.bytes)
    }
}

/// ONNX field numbers used by the hand-built files.
enum F {
    // ModelProto
    static let irVersion = 1, graph = 7, opsetImport = 8
    // GraphProto
    static let node = 1, graphName = 2, initializer = 5, input = 11, output = 12
    // NodeProto
    static let nodeInput = 1, nodeOutput = 2, nodeName = 3, opType = 4
    // TensorProto
    static let dims = 1, dataType = 2, tensorName = 8, rawData = 9, externalData = 13, dataLocation = 14
    // ValueInfoProto / TypeProto / Tensor / Shape / Dimension
    static let valueName = 1, valueType = 2, tensorType = 1, elemType = 1, shape = 2, dim = 1, dimValue = 1
}

/// A hand-built model: `y = Relu(x)` plus the given initializer bytes and extra nodes.
func handBuiltModel(initializers: [[UInt8]] = [], nodes: [[UInt8]]? = nil, outputs: [String] = ["y"]) -> [UInt8] {
    var model = ProtoWriter()
    model.varint(F.irVersion, 8)
    model.message(F.opsetImport) { $0.string(1, ""); $0.varint(2, 17) }
    model.message(F.graph) { graph in
        for node in nodes ?? [relu("x", "y", name: "relu")] { graph.data(F.node, node) }
        graph.string(F.graphName, "g")
        for tensor in initializers { graph.data(F.initializer, tensor) }
        graph.data(F.input, valueInfo("x"))
        for name in outputs { graph.data(F.output, valueInfo(name)) }
    }
    return model.bytes
}

func relu(_ input: String, _ output: String, name: String) -> [UInt8] {
    var node = ProtoWriter()
    node.string(F.nodeInput, input)
    node.string(F.nodeOutput, output)
    node.string(F.nodeName, name)
    node.string(F.opType, "Relu")
    return node.bytes
}

func valueInfo(_ name: String, dims: [Int64] = [2]) -> [UInt8] {
    var info = ProtoWriter()
    info.string(F.valueName, name)
    info.message(F.valueType) { type in
        type.message(F.tensorType) { tensor in
            tensor.varint(F.elemType, 1)
            tensor.message(F.shape) { shape in
                for d in dims { shape.message(F.dim) { $0.varint(F.dimValue, d) } }
            }
        }
    }
    return info.bytes
}

/// A TensorProto: name, dtype, dims and raw_data (or external-data entries).
func tensorProto(_ name: String, dataType: Int64 = 1, dims: [Int64], raw: [UInt8]? = nil,
                 external: [(String, String)]? = nil) -> [UInt8] {
    var tensor = ProtoWriter()
    for d in dims { tensor.varint(F.dims, d) }
    tensor.varint(F.dataType, dataType)
    tensor.string(F.tensorName, name)
    if let raw { tensor.data(F.rawData, raw) }
    if let external {
        for (key, value) in external { tensor.message(F.externalData) { $0.string(1, key); $0.string(2, value) } }
        tensor.varint(F.dataLocation, 1)
    }
    return tensor.bytes
}

/// A float32 tensor's raw bytes.
func floatBytes(_ values: [Float]) -> [UInt8] {
    values.withUnsafeBytes { Array($0) }
}

/// The node-test folders: third_party_data/onnx-node-tests (tools/fetch_node_tests.sh), else
/// the venv's onnx wheel. Nil when neither exists.
func nodeTestRoot() -> URL? {
    let fileManager = FileManager.default
    let fetched = repositoryRoot.appendingPathComponent("third_party_data/onnx-node-tests")
    if fileManager.fileExists(atPath: fetched.path) { return fetched }
    let lib = repositoryRoot.appendingPathComponent(".venv/lib")
    for python in (try? fileManager.contentsOfDirectory(atPath: lib.path))?.sorted() ?? [] where python.hasPrefix("python3") {
        let candidate = lib.appendingPathComponent("\(python)/site-packages/onnx/backend/test/data/node")
        if fileManager.fileExists(atPath: candidate.path) { return candidate }
    }
    return nil
}

/// Every `model.onnx` below the node-test root, sorted.
func nodeTestModels(_ root: URL) -> [URL] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
    return names.sorted().map { root.appendingPathComponent("\($0)/model.onnx") }
        .filter { FileManager.default.fileExists(atPath: $0.path) }
}

/// The shipped models under models/ (any `*.onnx`, recursively), sorted.
func shippedModels() -> [URL] {
    let root = repositoryRoot.appendingPathComponent("models")
    guard let walker = FileManager.default.enumerator(atPath: root.path) else { return [] }
    return walker.compactMap { $0 as? String }.filter { $0.hasSuffix(".onnx") }.sorted()
        .map { root.appendingPathComponent($0) }
}
