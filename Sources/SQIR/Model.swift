/// The default ONNX operator-set domain has two spellings in files, "" and "ai.onnx". The IR
/// keeps one, "": `Node.domain` and `OpsetImport.domain` store `canonical(_:)` of whatever is
/// assigned (so a loaded file, the text parser and a pass building nodes all agree), and code
/// compares domains with `==` / `isEmpty` only. The encoder writes "", which ONNX defines as
/// the same domain.
public enum ONNXDomain {
    /// The other spelling of the default domain, accepted on input only.
    public static let defaultDomainName = "ai.onnx"

    /// `domain` with the default domain spelled "".
    public static func canonical(_ domain: String) -> String {
        domain == defaultDomainName ? "" : domain
    }

    /// How messages and the IR printer name a domain: "ai.onnx" for the default one.
    public static func displayName(_ domain: String) -> String {
        domain.isEmpty ? defaultDomainName : domain
    }
}

/// An operator set a model imports: `domain` ("" = default ONNX domain) at `version`.
public struct OpsetImport: Hashable, Sendable {
    /// Always canonical (`ONNXDomain.canonical`): "ai.onnx" is stored as "".
    public var domain: String { didSet { domain = ONNXDomain.canonical(domain) } }
    public var version: Int
    public init(domain: String, version: Int) {
        self.domain = ONNXDomain.canonical(domain)
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

    /// The imported version of `domain` (either spelling of the default domain).
    public func opsetVersion(_ domain: String = "") -> Int? {
        let d = ONNXDomain.canonical(domain)
        return opsetImports.first { $0.domain == d }?.version
    }

    /// Sets the imported version of `domain`, adding the import if missing.
    public func setOpsetVersion(_ version: Int, domain: String = "") {
        let d = ONNXDomain.canonical(domain)
        if let i = opsetImports.firstIndex(where: { $0.domain == d }) {
            opsetImports[i].version = version
        } else {
            opsetImports.append(OpsetImport(domain: d, version: version))
        }
    }
}
