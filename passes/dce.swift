import SQIR

/// `dce`: dead code elimination.
///
/// Matches nodes none of whose outputs is a graph output or is used by a live node (uses
/// inside If/Loop bodies count), and initializers no node uses.
///
/// Rewrites: erases them, inside subgraphs too (a subgraph's outputs are its roots). Graph
/// inputs and outputs are never removed; nodes without outputs are kept (they exist only for
/// their effects).
///
/// Options: none.
///
/// ```
/// // before
/// graph g(%x: f32[4]) -> (%y: f32[4]) {
///   %unused = const f32[2] [1.0, 2.0]
///   %dead = Neg(%x)
///   %y = Relu(%x)
///   return %y
/// }
/// // after dce
/// graph g(%x: f32[4]) -> (%y: f32[4]) {
///   %y: f32[4] = Relu(%x)
///   return %y
/// }
/// ```
public struct DCE: Pass {
    public static let name = "dce"
    public static let summary = "Remove nodes and initializers whose results are never used"
    public static let description = """
        Erases every node none of whose outputs reaches a graph output (uses inside If/Loop \
        bodies count), then every initializer that no node uses. Works inside subgraphs too. \
        Graph inputs and outputs are never removed, and nodes without outputs are kept.
        """
    public static let statistics = [
        PassStatisticDeclaration("initializers-removed", help: "unused initializers removed"),
    ]

    public init(options: PassOptions) {}

    public func run(on model: Model, context: PassContext) throws -> PassResult {
        var statistics = PassStatistics()
        let removedNodes = try eliminate(in: model.graph, statistics: &statistics)
        let changed = removedNodes > 0 || statistics[counter: "initializers-removed"] > 0
        return PassResult(changed: changed, statistics: statistics)
    }

    /// Marks live nodes from the graph outputs backwards, erases the rest; returns how many
    /// nodes were erased (subgraphs included).
    private func eliminate(in graph: Graph, statistics: inout PassStatistics) throws -> Int {
        var liveValues = Set(graph.outputs.map(ObjectIdentifier.init))
        var dead: [Node] = []
        var erasedInside = 0
        for node in graph.nodes.reversed() {
            let live = node.outputs.isEmpty || node.outputs.contains { $0.map { liveValues.contains(ObjectIdentifier($0)) } ?? false }
            guard live else {
                dead.append(node)
                continue
            }
            for sub in node.subgraphs {
                erasedInside += try eliminate(in: sub, statistics: &statistics)
            }
            for case let input? in node.inputs { liveValues.insert(ObjectIdentifier(input)) }
            for value in DCE.outerValuesUsed(by: node) { liveValues.insert(ObjectIdentifier(value)) }
        }
        if !dead.isEmpty { try graph.eraseDetachingSubgraphs(dead) }
        statistics.increment("initializers-removed", by: graph.removeUnusedInitializers())
        return dead.count + erasedInside
    }

    /// Every value used by nodes nested in `node`'s subgraphs (local ones included: they are
    /// harmless in the live set).
    static func outerValuesUsed(by node: Node) -> [Value] {
        var out: [Value] = []
        for sub in node.subgraphs {
            for inner in sub.nodes {
                out.append(contentsOf: inner.inputs.compactMap { $0 })
                out.append(contentsOf: outerValuesUsed(by: inner))
            }
            out.append(contentsOf: sub.outputs)
        }
        return out
    }
}
