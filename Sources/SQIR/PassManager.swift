import Foundation

/// Runs a list of passes over a model with the debugging aids of MLIR's pass manager:
/// verification after every pass (`verifyEach`), IR printing before/after passes, a timing
/// table and per-pass statistics. Everything printed goes to `output`, so the caller decides
/// where it lands (stderr, a file, a test buffer).
///
/// ```swift
/// let manager = try PassManager(pipeline: "canonicalize-norms,fold-constants,dce",
///                               registry: .builtin)
/// manager.instrumentation.timePasses = true
/// manager.output = { FileHandle.standardError.write(Data($0.utf8)) }
/// let report = try manager.run(on: model)
/// ```
public final class PassManager {
    public let passes: [any Pass]
    public var instrumentation: PassInstrumentation
    /// Receives IR dumps and tables. Default: discard.
    public var output: (String) -> Void

    public init(passes: [any Pass], instrumentation: PassInstrumentation = PassInstrumentation(),
                output: @escaping (String) -> Void = { _ in }) {
        self.passes = passes
        self.instrumentation = instrumentation
        self.output = output
    }

    /// Builds the passes of a parsed pipeline.
    public convenience init(pipeline: Pipeline, registry: PassRegistry,
                            instrumentation: PassInstrumentation = PassInstrumentation()) throws {
        self.init(passes: try pipeline.makePasses(using: registry), instrumentation: instrumentation)
    }

    /// Parses and builds a pipeline given as text (throws `PipelineError` on bad text).
    public convenience init(pipeline text: String, registry: PassRegistry,
                            instrumentation: PassInstrumentation = PassInstrumentation()) throws {
        let pipeline = try PipelineParser(registry: registry).parse(text)
        try self.init(pipeline: pipeline, registry: registry, instrumentation: instrumentation)
    }

    /// The pipeline as text (`a,b,c`; options are not recoverable from pass instances).
    public var pipelineNames: String { passes.map { type(of: $0).name }.joined(separator: ",") }

    /// Runs every pass in order. Throws `PassExecutionError` naming the pass that failed or
    /// left IR the verifier rejects.
    @discardableResult
    public func run(on model: Model, context: PassContext = PassContext()) throws -> PipelineReport {
        context.instrumentation = instrumentation
        let printer = IRPrinter(maxConstantElements: instrumentation.printerMaxConstantElements)
        let verifier = Verifier(file: model.sourcePath)
        if instrumentation.verifyEach {
            do { try verifier.verify(model) } catch {
                throw PassExecutionError(pass: nil, stage: .inputVerification, underlying: error)
            }
        }
        var report = PipelineReport()
        defer { context.currentPass = nil }
        for pass in passes {
            let name = type(of: pass).name
            context.currentPass = name
            if instrumentation.printsBefore(name) {
                output("// ----- IR before pass '\(name)' -----\n" + printer.print(model))
            }
            let census = NodeCensus(model.graph)
            let start = DispatchTime.now().uptimeNanoseconds
            var result: PassResult
            do { result = try pass.run(on: model, context: context) } catch {
                if instrumentation.printsAfter(name) {
                    output("// ----- IR after failed pass '\(name)' -----\n" + printer.print(model))
                }
                throw PassExecutionError(pass: name, stage: .run, underlying: error)
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let (added, removed) = census.difference(to: model.graph)
            result.statistics.nodesAdded = added
            result.statistics.nodesRemoved = removed
            report.records.append(PassRunRecord(pass: name, seconds: seconds, result: result))
            if instrumentation.printsAfter(name) && (result.changed || !instrumentation.printIRAfterOnlyIfChanged) {
                output("// ----- IR after pass '\(name)' -----\n" + printer.print(model))
            }
            if instrumentation.verifyEach {
                do { try verifier.verify(model) } catch {
                    if !instrumentation.printsAfter(name) {
                        output("// ----- IR after pass '\(name)' (fails verification) -----\n" + printer.print(model))
                    }
                    throw PassExecutionError(pass: name, stage: .verification, underlying: error)
                }
            }
        }
        if instrumentation.timePasses { output(report.timingTable()) }
        if instrumentation.printStatistics { output(report.statisticsTable()) }
        return report
    }
}

/// The identities of every node in a graph and its subgraphs, to count nodes a pass added
/// and removed. Holding the nodes keeps their identities from being reused.
struct NodeCensus {
    private let nodes: [Node]

    init(_ graph: Graph) {
        var all: [Node] = []
        NodeCensus.collect(graph, into: &all)
        nodes = all
    }

    private static func collect(_ graph: Graph, into all: inout [Node]) {
        for node in graph.nodes {
            all.append(node)
            for sub in node.subgraphs { collect(sub, into: &all) }
        }
    }

    func difference(to graph: Graph) -> (added: Int, removed: Int) {
        let before = Set(nodes.map(ObjectIdentifier.init))
        var now: [Node] = []
        NodeCensus.collect(graph, into: &now)
        let after = Set(now.map(ObjectIdentifier.init))
        return (after.subtracting(before).count, before.subtracting(after).count)
    }
}
