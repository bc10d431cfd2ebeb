/// A use of a value: operand `index` of `node`.
public struct Use: Hashable {
    public unowned let node: Node
    public let index: Int

    public static func == (a: Use, b: Use) -> Bool { a.node === b.node && a.index == b.index }
    public func hash(into h: inout Hasher) {
        h.combine(ObjectIdentifier(node))
        h.combine(index)
    }
}

/// An SSA value: a graph input, an initializer (`constant != nil`, no producer) or a node output.
///
/// Values are defined once. `uses` is maintained by the mutation API of `Node` and `Graph`;
/// never edit it by hand.
public final class Value: CustomStringConvertible {
    /// The ONNX name. Graph inputs and outputs keep their names through every pass.
    public var name: String
    /// Static type if known (from the file's value_info or shape inference).
    public var type: TensorType?
    /// Constant data: initializers, and values a pass has folded.
    public var constant: Tensor?
    /// The node that defines this value (nil for graph inputs and initializers).
    public internal(set) weak var producer: Node?
    public internal(set) var uses: [Use] = []
    /// Free-form documentation string carried from the file's value_info.
    public var docString: String = ""
    /// Details of the file format that the IR does not model (e.g. an ONNX TypeProto the
    /// `TensorType` cannot express, unknown protobuf fields), owned by the I/O layer that
    /// read the value and written back by it. Passes leave it alone.
    public var formatExtras: (any Sendable)?

    public init(name: String, type: TensorType? = nil, constant: Tensor? = nil) {
        self.name = name
        self.type = type ?? constant.map { $0.type }
        self.constant = constant
    }

    public var isConstant: Bool { constant != nil }
    public var hasUses: Bool { !uses.isEmpty }
    /// Distinct nodes using this value.
    public var users: [Node] {
        var seen = Set<ObjectIdentifier>()
        return uses.compactMap { seen.insert(ObjectIdentifier($0.node)).inserted ? $0.node : nil }
    }
    public var description: String { "%\(name)" }

    func removeUse(_ use: Use) {
        if let i = uses.firstIndex(of: use) { uses.remove(at: i) }
    }
}
