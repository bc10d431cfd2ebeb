import Foundation

/// Runs a list of passes with the debugging aids of MLIR's pass manager: verification after
/// every pass (`verifyEach`), IR printing before/after passes, a timing table and per-pass
/// statistics. Everything printed goes to `output`, so the caller decides where it lands
/// (stderr, a file, a test buffer).
///
/// Before each pass the manager provides what the pass declares it needs of the model
/// (`Pass.requirements(for:)`): for `.minimumOpset(21)` on an older model it runs the
/// registered provider, `upgrade-opset{to=21}`, as a step of its own, with a note in the
/// context, a record in the report (`PassRunRecord.requiredBy`) and the same verification,
/// printing and timing as any pass.
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
    /// Where the passes providing other passes' requirements come from. Without one, a pass
    /// whose requirement the model does not meet fails before it runs.
    public var registry: PassRegistry?

    public init(passes: [any Pass], registry: PassRegistry? = nil,
                instrumentation: PassInstrumentation = PassInstrumentation(),
                output: @escaping (String) -> Void = { _ in }) {
        self.passes = passes
        self.registry = registry
        self.instrumentation = instrumentation
        self.output = output
    }

    /// Builds the passes of a parsed pipeline.
    public convenience init(pipeline: Pipeline, registry: PassRegistry,
                            instrumentation: PassInstrumentation = PassInstrumentation()) throws {
        self.init(passes: try pipeline.makePasses(using: registry), registry: registry, instrumentation: instrumentation)
    }

    /// Parses and builds a pipeline given as text (throws `PipelineError` on bad text).
    public convenience init(pipeline text: String, registry: PassRegistry,
                            instrumentation: PassInstrumentation = PassInstrumentation()) throws {
        let pipeline = try PipelineParser(registry: registry).parse(text)
        try self.init(pipeline: pipeline, registry: registry, instrumentation: instrumentation)
    }

    /// The pipeline as text (`a,b,c`; options are not recoverable from pass instances).
    public var pipelineNames: String { passes.map { type(of: $0).name }.joined(separator: ",") }

    /// Runs every pass in order, each after the steps providing its requirements. Throws
    /// `PassExecutionError` naming the pass that failed or left IR the verifier rejects.
    @discardableResult
    public func run(on model: Model, context: PassContext = PassContext()) throws -> PipelineReport {
        context.instrumentation = instrumentation
        var run = Run(model: model, context: context, instrumentation: instrumentation, output: output)
        if instrumentation.verifyEach {
            do { try run.verifier.verify(model) } catch {
                throw PassExecutionError(pass: nil, stage: .inputVerification, underlying: error)
            }
        }
        defer { context.currentPass = nil }
        for pass in passes {
            try provideRequirements(of: pass, in: &run)
            try run.step(pass, requiredBy: nil)
        }
        if instrumentation.timePasses { output(run.report.timingTable()) }
        if instrumentation.printStatistics { output(run.report.statisticsTable()) }
        return run.report
    }

    /// Runs the provider of every requirement of `pass` that the model does not meet.
    private func provideRequirements(of pass: any Pass, in run: inout Run) throws {
        let name = type(of: pass).name
        for requirement in pass.requirements(for: run.model) {
            guard let unmet = requirement.unmetReason(in: run.model) else { continue }
            guard let registry, let element = registry.provider(for: requirement) else {
                throw PassExecutionError(pass: name, stage: .requirement, underlying: IRError(
                    file: run.model.sourcePath, reason: "'\(name)' needs \(requirement) (\(unmet)) and no registered pass provides it"))
            }
            let provider = try registry.makePass(named: element.passName, options: element.options)
            run.context.currentPass = nil
            run.context.note("running \(element) first: '\(name)' needs \(requirement) (\(unmet))")
            try run.step(provider, requiredBy: name)
        }
    }

    /// One pipeline run: the model, its context and the report so far.
    private struct Run {
        let model: Model
        let context: PassContext
        let instrumentation: PassInstrumentation
        let output: (String) -> Void
        let printer: IRPrinter
        let verifier: Verifier
        var report = PipelineReport()

        init(model: Model, context: PassContext, instrumentation: PassInstrumentation, output: @escaping (String) -> Void) {
            self.model = model
            self.context = context
            self.instrumentation = instrumentation
            self.output = output
            printer = IRPrinter(maxConstantElements: instrumentation.printerMaxConstantElements)
            verifier = Verifier(file: model.sourcePath)
        }

        /// Runs one pass with printing, timing, node counting and verification.
        mutating func step(_ pass: any Pass, requiredBy: String?) throws {
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
            report.records.append(PassRunRecord(pass: name, seconds: seconds, result: result, requiredBy: requiredBy))
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
