/// An operator set a model imports: `domain` ("" = default ONNX domain) at `version`.
public struct OpsetImport: Hashable, Sendable {
    public var domain: String
    public var version: Int
    public init(domain: String, version: Int) {
        self.domain = domain
        self.version = version
    }
}

/// A whole model: the top-level graph plus ModelProto's metadata.
public final class Model {
    public var irVersion: Int
    public var opsetImports: [OpsetImport]
    public var producerName: String = ""
    public var producerVersion: String = ""
    public var domain: String = ""
    public var modelVersion: Int = 0
    public var docString: String = ""
    /// `metadata_props` key/value pairs in file order.
    public var metadata: [(key: String, value: String)] = []
    /// Model-local functions, kept as packed FunctionProto bytes.
    public var functions: [[UInt8]] = []
    /// Fields of ModelProto sqopt does not model, re-emitted verbatim.
    public var unknownFields: [UInt8] = []
    public var graph: Graph
    /// The file the model was read from (for error messages); nil when built in memory.
    public var sourcePath: String?

    public init(graph: Graph, irVersion: Int = 8, opsetImports: [OpsetImport] = [OpsetImport(domain: "", version: 17)]) {
        self.graph = graph
        self.irVersion = irVersion
        self.opsetImports = opsetImports
    }

    /// The imported version of `domain` ("" and "ai.onnx" are the same domain).
    public func opsetVersion(_ domain: String = "") -> Int? {
        let d = domain == "ai.onnx" ? "" : domain
        return opsetImports.first { ($0.domain == "ai.onnx" ? "" : $0.domain) == d }?.version
    }

    /// Sets the imported version of `domain`, adding the import if missing.
    public func setOpsetVersion(_ version: Int, domain: String = "") {
        let d = domain == "ai.onnx" ? "" : domain
        if let i = opsetImports.firstIndex(where: { ($0.domain == "ai.onnx" ? "" : $0.domain) == d }) {
            opsetImports[i].version = version
        } else {
            opsetImports.append(OpsetImport(domain: d, version: version))
        }
    }
}
