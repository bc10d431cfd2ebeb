/// An operation: `outputs = opType(inputs) {attributes}`.
///
/// Inputs and outputs are optional: ONNX marks an omitted optional operand with an empty
/// name, which is `nil` here. Change operands only through `setInput`, `appendInput`,
/// `removeInput` and `setOutput` so that use lists stay right.
public final class Node: CustomStringConvertible {
    public var opType: String
    /// Operator-set domain; "" is the default ONNX domain. Always canonical
    /// (`ONNXDomain.canonical`): a node given "ai.onnx" stores "".
    public var domain: String { didSet { domain = ONNXDomain.canonical(domain) } }
    public var name: String
    public var attributes: [Attribute]
    public var docString: String = ""
    /// Fields of NodeProto sqopt does not model, re-emitted verbatim by the encoder.
    public var unknownFields: [UInt8] = []
    public private(set) var inputs: [Value?] = []
    public private(set) var outputs: [Value?] = []
    /// The graph the node belongs to (set by `Graph` insertion).
    public internal(set) weak var graph: Graph?

    public init(_ opType: String, domain: String = "", name: String = "",
                inputs: [Value?] = [], outputs: [Value?] = [], attributes: [Attribute] = []) {
        self.opType = opType
        self.domain = ONNXDomain.canonical(domain)
        self.name = name
        self.attributes = attributes
        for v in inputs { appendInput(v) }
        for v in outputs { appendOutput(v) }
    }

    /// `domain::OpType`, or just `OpType` in the default domain.
    public var qualifiedOpType: String {
        domain.isEmpty ? opType : "\(domain)::\(opType)"
    }

    /// True for an op of the default domain with this type.
    public func isOp(_ type: String) -> Bool {
        opType == type && domain.isEmpty
    }

    // MARK: attributes

    public subscript(attribute name: String) -> Attribute? {
        get { attributes.first { $0.name == name } }
        set {
            if let i = attributes.firstIndex(where: { $0.name == name }) {
                if let newValue { attributes[i] = newValue } else { attributes.remove(at: i) }
            } else if let newValue {
                attributes.append(newValue)
            }
        }
    }

    public func int(_ name: String) -> Int? { self[attribute: name]?.int }
    public func float(_ name: String) -> Float? { self[attribute: name]?.float }
    public func ints(_ name: String) -> [Int]? { self[attribute: name]?.ints }
    public func string(_ name: String) -> String? { self[attribute: name]?.string }

    // MARK: operands

    /// Input `i`, or nil when absent or omitted.
    public func input(_ i: Int) -> Value? { i < inputs.count ? inputs[i] : nil }
    public func output(_ i: Int) -> Value? { i < outputs.count ? outputs[i] : nil }

    public func setInput(_ i: Int, _ value: Value?) {
        while inputs.count <= i { inputs.append(nil) }
        if let old = inputs[i] { old.removeUse(Use(node: self, index: i)) }
        inputs[i] = value
        value?.uses.append(Use(node: self, index: i))
    }

    public func appendInput(_ value: Value?) {
        inputs.append(nil)
        setInput(inputs.count - 1, value)
    }

    /// Removes input `i`, shifting later operands down.
    public func removeInput(_ i: Int) {
        let old = inputs
        dropAllInputs()
        for (j, v) in old.enumerated() where j != i { appendInput(v) }
    }

    /// Removes trailing omitted inputs (so `[a, nil, nil]` prints as `(a)`).
    public func trimTrailingNilInputs() {
        while let last = inputs.last, last == nil { inputs.removeLast() }
    }

    /// Detaches every input (the node no longer uses anything).
    public func dropAllInputs() {
        for (i, v) in inputs.enumerated() { v?.removeUse(Use(node: self, index: i)) }
        inputs.removeAll()
    }

    public func setOutput(_ i: Int, _ value: Value?) {
        while outputs.count <= i { outputs.append(nil) }
        if let old = outputs[i], old.producer === self { old.producer = nil }
        outputs[i] = value
        value?.producer = self
    }

    public func appendOutput(_ value: Value?) {
        outputs.append(nil)
        setOutput(outputs.count - 1, value)
    }

    /// Subgraphs held in attributes (If/Loop/Scan bodies).
    public var subgraphs: [Graph] {
        attributes.flatMap { attr -> [Graph] in
            switch attr.value {
            case .graph(let g): return [g]
            case .graphs(let gs): return gs
            default: return []
            }
        }
    }

    public var description: String { IRPrinter().line(for: self) }
}
