/// How often each rule applied in one driver run.
public struct RewriteSummary: Sendable, Equatable {
    public struct RuleCount: Sendable, Equatable {
        public let rule: String
        public var count: Int
    }

    /// Rules that applied at least once, in first-application order.
    public private(set) var applications: [RuleCount] = []
    public private(set) var nodesErased = 0

    public init() {}

    public var total: Int { applications.reduce(0) { $0 + $1.count } }

    public func count(of rule: String) -> Int { applications.first { $0.rule == rule }?.count ?? 0 }

    mutating func record(_ rule: String, erased: Int) {
        nodesErased += erased
        if let i = applications.firstIndex(where: { $0.rule == rule }) {
            applications[i].count += 1
        } else {
            applications.append(RuleCount(rule: rule, count: 1))
        }
    }
}

/// Applies a `RuleSet` to a fixed point (a greedy worklist driver, like MLIR's): every node is
/// tried against the rules indexed by its op type; after a rewrite, the new nodes and the
/// users of the replacement values are tried again. The replaced root and matched nodes left
/// without uses are erased; other dead nodes are left for `dce`.
public struct RewriteDriver {
    /// Upper bound on rewrites (default: 20 per node, at least 1000); exceeding it throws,
    /// since it means two rules undo each other.
    public var maxRewrites: Int?
    /// Also rewrite inside subgraphs (If/Loop bodies).
    public var recurseIntoSubgraphs: Bool

    public init(maxRewrites: Int? = nil, recurseIntoSubgraphs: Bool = true) {
        self.maxRewrites = maxRewrites
        self.recurseIntoSubgraphs = recurseIntoSubgraphs
    }

    public func apply(_ rules: RuleSet, to model: Model, context: PassContext? = nil) throws -> RewriteSummary {
        var summary = RewriteSummary()
        try apply(rules, to: model.graph, model: model, context: context, summary: &summary)
        return summary
    }

    public func apply(_ rules: RuleSet, to graph: Graph, model: Model? = nil,
                      context: PassContext? = nil) throws -> RewriteSummary {
        var summary = RewriteSummary()
        try apply(rules, to: graph, model: model, context: context, summary: &summary)
        return summary
    }

    private func apply(_ rules: RuleSet, to graph: Graph, model: Model?, context: PassContext?,
                       summary: inout RewriteSummary) throws {
        if recurseIntoSubgraphs {
            for node in graph.nodes {
                for sub in node.subgraphs { try apply(rules, to: sub, model: model, context: context, summary: &summary) }
            }
        }
        let limit = maxRewrites ?? max(1000, 20 * graph.nodes.count)
        var rewrites = 0
        var worklist = Worklist(graph.nodes)
        while let node = worklist.pop() {
            guard node.graph === graph else { continue }
            for rule in rules.candidates(for: node) {
                guard let match = PatternMatcher.match(rule.pattern, root: node) else { continue }
                let builder = RewriteBuilder(graph: graph, model: model, root: node, context: context)
                guard let replacements = try rule.rewrite(match, builder),
                      let touched = try commit(builder, replacements, match, rule: rule.name, summary: &summary) else {
                    builder.discard()
                    continue
                }
                rewrites += 1
                if rewrites > limit {
                    throw IRError(location: IRError.describe(node),
                                  reason: "pattern rewriting did not converge after \(limit) rewrites (last rule: '\(rule.name)')")
                }
                for n in touched { worklist.push(n) }
                break
            }
        }
    }

    /// Inserts the staged IR and redirects uses; returns the nodes to revisit, or nil when the
    /// replacement would rename a graph input or output (the rule is then declined).
    private func commit(_ builder: RewriteBuilder, _ replacements: [Value?], _ match: Match, rule: String,
                        summary: inout RewriteSummary) throws -> [Node]? {
        let root = match.root, graph = builder.graph
        guard replacements.count == root.outputs.count else {
            throw IRError(node: root, reason: "rule '\(rule)' returned \(replacements.count) replacement(s) for \(root.outputs.count) output(s)")
        }
        for (old, new) in zip(root.outputs, replacements) {
            guard let old else { continue }
            guard let new else {
                if old.hasUses || graph.outputs.contains(where: { $0 === old }) {
                    throw IRError(node: root, reason: "rule '\(rule)' gave no replacement for output '\(old.name)', which is used")
                }
                continue
            }
            if new !== old && !builder.replacementKeepsSignature(old, new) { return nil }
        }

        let staged = builder.stagedNodes
        let stagedIDs = Set(staged.map(ObjectIdentifier.init))
        let usesRootOutput = staged.contains { n in n.inputs.contains { v in v.map { $0.producer === root } ?? false } }
        var anchor = root
        for node in staged {
            if usesRootOutput { graph.insert(node, after: anchor); anchor = node } else { graph.insert(node, before: root) }
        }
        graph.initializers.append(contentsOf: builder.stagedInitializers)
        var touched = staged
        for (node, change) in builder.modifications {
            change(node)
            touched.append(node)
        }
        for (old, new) in zip(root.outputs, replacements) {
            guard let old, let new, new !== old else { continue }
            if new.type == nil { new.type = old.type }
            redirect(old, to: new, in: graph, except: stagedIDs)
            touched.append(contentsOf: new.users)
        }

        // The root and matched nodes that lost their last use go now (root first, then
        // producers as their consumers disappear).
        var erased = 0
        var progress = true
        while progress {
            progress = false
            for node in match.matchedNodes where node.graph === graph && isDead(node, in: graph) {
                try graph.eraseDetachingSubgraphs([node])
                erased += 1
                progress = true
            }
        }
        summary.record(rule, erased: erased)
        return touched.filter { $0.graph === graph }
    }

    private func isDead(_ node: Node, in graph: Graph) -> Bool {
        !node.outputs.isEmpty && node.outputs.allSatisfy { out in
            guard let out else { return true }
            return !out.hasUses && !graph.outputs.contains { $0 === out }
        }
    }

    /// `graph.replaceAllUses`, except that uses by the rewrite's own new nodes stay on `old`
    /// (a rule may wrap the root: `x -> Mul(x, s)`).
    private func redirect(_ old: Value, to new: Value, in graph: Graph, except staged: Set<ObjectIdentifier>) {
        for use in old.uses where !staged.contains(ObjectIdentifier(use.node)) {
            use.node.setInput(use.index, new)
        }
        for i in graph.outputs.indices where graph.outputs[i] === old {
            graph.outputs[i] = new
            let oldName = old.name
            old.name = graph.uniqueName(oldName + "_replaced")
            new.name = oldName
        }
    }
}

/// FIFO of nodes without duplicates.
private struct Worklist {
    private var items: [Node] = []
    private var head = 0
    private var queued = Set<ObjectIdentifier>()

    init(_ nodes: [Node]) { for n in nodes { push(n) } }

    mutating func push(_ node: Node) {
        if queued.insert(ObjectIdentifier(node)).inserted { items.append(node) }
    }

    mutating func pop() -> Node? {
        guard head < items.count else { return nil }
        let node = items[head]
        head += 1
        queued.remove(ObjectIdentifier(node))
        return node
    }
}

extension Graph {
    /// Erases `nodes` (whose outputs must be dead), first detaching the nodes of their
    /// subgraphs from the outer values they use, so use lists stay exact.
    public func eraseDetachingSubgraphs(_ doomed: [Node]) throws {
        for node in doomed {
            for sub in node.subgraphs { sub.detachAllUses() }
        }
        try eraseNodes(doomed)
    }

    private func detachAllUses() {
        for node in nodes {
            node.dropAllInputs()
            for sub in node.subgraphs { sub.detachAllUses() }
        }
    }
}
