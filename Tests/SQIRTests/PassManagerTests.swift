import Testing
import SQIR

/// Replaces `Neg(Neg(x))` by x with the pattern driver (exercises the manager's counters).
struct DoubleNegation: Pass {
    static let name = "double-negation"
    static let summary = "Neg(Neg(x)) -> x"
    static let description = "Removes pairs of negations."
    static let statistics = [PassStatisticDeclaration("pairs", help: "pairs removed")]
    static let rules = RuleSet([
        // Neg(Neg(x)) -> x
        RewriteRule("Neg(Neg(x)) -> x", .op("Neg", [.op("Neg", [.any("x")])])) { m, _ in [m["x"]] },
    ])
    init(options: PassOptions) {}
    func run(on model: Model, context: PassContext) throws -> PassResult {
        let summary = try RewriteDriver().apply(Self.rules, to: model, context: context)
        var statistics = PassStatistics()
        statistics[counter: "pairs"] = summary.total
        return PassResult(changed: summary.total > 0, statistics: statistics)
    }
}

/// Breaks the IR: drops the first node although its output is still used.
struct BreakGraph: Pass {
    static let name = "break-graph"
    static let summary = "Leaves a dangling use"
    static let description = "For testing verify-each."
    init(options: PassOptions) {}
    func run(on model: Model, context: PassContext) throws -> PassResult {
        if let first = model.graph.nodes.first {
            var order = model.graph.nodes
            order.removeFirst()
            model.graph.reorder(order)
            context.warning("dropped a node", node: first)
        }
        return PassResult(changed: true)
    }
}

struct FailingPass: Pass {
    static let name = "failing"
    static let summary = "Throws"
    static let description = "For testing error wrapping."
    init(options: PassOptions) {}
    func run(on model: Model, context: PassContext) throws -> PassResult {
        throw IRError(location: "node 'n' (X)", reason: "no good")
    }
}

let managerRegistry = PassRegistry().registering(DoubleNegation.self).registering(BreakGraph.self).registering(FailingPass.self)

let negationText = """
    graph g(%x: f32[2]) -> (%y: f32[2]) {
      %a = Neg(%x) @n1
      %b = Neg(%a) @n2
      %y = Relu(%b) @r
      return %y
    }
    """

@Suite struct PassManagerTests {
    @Test func runsAndCountsNodes() throws {
        let model = try IRParser().parseModel(negationText)
        let manager = try PassManager(pipeline: "double-negation", registry: managerRegistry)
        let report = try manager.run(on: model)
        let stats = try #require(report.records.first?.result.statistics)
        #expect(stats.nodesRemoved == 2 && stats.nodesAdded == 0 && stats[counter: "pairs"] == 1)
        #expect(model.graph.nodes.map(\.opType) == ["Relu"])
        #expect(model.graph.nodes.first?.input(0) === model.graph.inputs.first)
    }

    @Test func verifyEachNamesTheBreakingPass() throws {
        let model = try IRParser().parseModel(negationText)
        let manager = try PassManager(pipeline: "double-negation,break-graph", registry: managerRegistry)
        let context = PassContext()
        var printed = ""
        manager.output = { printed += $0 }
        do {
            try manager.run(on: model, context: context)
            Issue.record("verifier should fail")
        } catch {
            #expect("\(error)" == "verifier failed after pass 'break-graph': graph 'g' output 'y': graph output is not defined")
        }
        #expect(context.diagnostics.map(\.description) == ["warning: [break-graph] node 'r' (Relu): dropped a node"])
        #expect(printed.hasPrefix("// ----- IR after pass 'break-graph' (fails verification) -----\n"))
    }

    @Test func verifyEachCanBeOff() throws {
        let model = try IRParser().parseModel(negationText)
        var instrumentation = PassInstrumentation()
        instrumentation.verifyEach = false
        let manager = try PassManager(pipeline: "break-graph", registry: managerRegistry, instrumentation: instrumentation)
        try manager.run(on: model)
    }

    @Test func passErrorsNameThePass() throws {
        let model = try IRParser().parseModel(negationText)
        let manager = try PassManager(pipeline: "failing", registry: managerRegistry)
        #expect(throws: PassExecutionError.self) { try manager.run(on: model) }
        do { try manager.run(on: model) } catch {
            #expect("\(error)" == "pass 'failing' failed: node 'n' (X): no good")
        }
    }

    @Test func printsIRBeforeAndAfterToTheSink() throws {
        let model = try IRParser().parseModel(negationText)
        var instrumentation = PassInstrumentation()
        instrumentation.printIRBefore = ["double-negation"]
        instrumentation.printIRAfterAll = true
        instrumentation.printIRAfterOnlyIfChanged = true
        let manager = try PassManager(pipeline: "double-negation,double-negation", registry: managerRegistry,
                                      instrumentation: instrumentation)
        var printed: [String] = []
        manager.output = { printed.append($0) }
        try manager.run(on: model)
        #expect(printed.count == 3)
        #expect(printed[0].hasPrefix("// ----- IR before pass 'double-negation' -----\n// ir_version 8, opsets ai.onnx=17\ngraph g("))
        #expect(printed[1].hasPrefix("// ----- IR after pass 'double-negation' -----\n"))
        #expect(printed[1].contains("%y: f32[2] = Relu(%x) @r"))
        #expect(printed[2].hasPrefix("// ----- IR before pass 'double-negation' -----\n"))
    }

    @Test func timingAndStatisticsTables() throws {
        let model = try IRParser().parseModel(negationText)
        var instrumentation = PassInstrumentation()
        instrumentation.timePasses = true
        instrumentation.printStatistics = true
        let manager = try PassManager(pipeline: "double-negation", registry: managerRegistry, instrumentation: instrumentation)
        var printed = ""
        manager.output = { printed += $0 }
        try manager.run(on: model)
        let lines = printed.split(separator: "\n").map(String.init)
        #expect(lines[0] == "pass timing (wall clock)")
        #expect(lines[1] == "     time (ms)       %  pass")
        #expect(lines[2].hasSuffix("%  double-negation"))
        #expect(lines[3].hasSuffix("100.0%  total"))
        #expect(lines[4] == "pass statistics")
        #expect(lines[5] == "  double-negation: changed, +0 -2 ~0 nodes; pairs=1")
    }

    @Test func contextSlotsAreTyped() {
        enum Scale: PassContextKey { typealias Value = [String: Float] }
        enum Other: PassContextKey { typealias Value = Int }
        let context = PassContext()
        #expect(context[Scale.self] == nil)
        context[Scale.self] = ["x": 2]
        context[Other.self] = 5
        #expect(context[Scale.self]?["x"] == 2)
        #expect(context[Other.self] == 5)
    }
}
