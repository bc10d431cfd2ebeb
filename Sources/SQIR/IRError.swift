/// An error about a model or graph, naming where it happened: the file, the node (or
/// tensor/value) and the reason. The CLI prints `description` as a one-line message.
public struct IRError: Error, CustomStringConvertible, Sendable, Equatable {
    public var file: String?
    /// A node (`node 'name' (OpType)`), tensor or value the error is about.
    public var location: String?
    public var reason: String

    public init(file: String? = nil, location: String? = nil, reason: String) {
        self.file = file
        self.location = location
        self.reason = reason
    }

    /// `node 'name' (OpType)` for a node, used as `location`.
    public static func describe(_ node: Node) -> String {
        "node '\(node.name)' (\(node.qualifiedOpType))"
    }

    public init(node: Node, reason: String, file: String? = nil) {
        self.init(file: file, location: IRError.describe(node), reason: reason)
    }

    /// The same error with the file filled in (when not already known).
    public func inFile(_ path: String?) -> IRError {
        var copy = self
        if copy.file == nil { copy.file = path }
        return copy
    }

    public var description: String {
        [file, location, reason].compactMap { $0 }.joined(separator: ": ")
    }
}
