import Foundation
import SQIR

/// The pass-manager flags that `sqopt --passes` and `sqopt opt` share (MLIR's
/// `--print-ir-after`, `--verify-each`, `--time-passes`, remarks), declared once so both
/// commands parse, document and apply them the same way.
enum PipelineFlags {
    static let options: [OptionSpec] = [
        .repeated("--print-ir-before", valueName: "PASS", help: "print the IR before PASS"),
        .repeated("--print-ir-after", valueName: "PASS", help: "print the IR after PASS"),
        .flag("--print-ir-after-all", help: "print the IR after every pass"),
        .flag("--no-verify-each", help: "skip the IR verifier between passes (on by default)"),
        .flag("--time-passes", help: "print wall time per pass"),
        .flag("--statistics", help: "print per-pass statistics"),
        .flag("--remarks", help: "print the passes' remarks (why they did or did not rewrite something)"),
    ]

    /// The `--passes LIST` pipeline, parsed against `registry`; a usage error showing `example`
    /// when it is missing.
    static func pipeline(_ parsed: ParsedArguments, registry: PassRegistry, command: String, example: String) throws -> Pipeline {
        guard let text = parsed.value("--passes") else {
            throw UsageError(message: "no --passes given (e.g. --passes \(example))", command: command)
        }
        return try PipelineParser(registry: registry).parse(text)
    }

    /// The pass manager's settings from the flags.
    static func instrumentation(_ parsed: ParsedArguments) -> PassInstrumentation {
        var instrumentation = PassInstrumentation()
        instrumentation.verifyEach = !parsed.has("--no-verify-each")
        instrumentation.printIRBefore = Set(parsed.all("--print-ir-before"))
        instrumentation.printIRAfter = Set(parsed.all("--print-ir-after"))
        instrumentation.printIRAfterAll = parsed.has("--print-ir-after-all")
        instrumentation.timePasses = parsed.has("--time-passes")
        instrumentation.printStatistics = parsed.has("--statistics")
        return instrumentation
    }

    /// Prints diagnostics on stderr as the passes emit them: warnings and notes unless
    /// `quiet`, remarks only with `--remarks` (asked for by name, so even with `quiet`).
    static func diagnosticPrinter(_ parsed: ParsedArguments, quiet: Bool) -> (Diagnostic) -> Void {
        let remarks = parsed.has("--remarks")
        return { diagnostic in
            switch diagnostic.severity {
            case .warning, .note: if !quiet { Console.error(diagnostic.description) }
            case .remark: if remarks { Console.error(diagnostic.description) }
            }
        }
    }

    /// A pass manager for `pipeline` whose tables and IR dumps go to stderr.
    static func manager(_ pipeline: Pipeline, registry: PassRegistry, parsed: ParsedArguments) throws -> PassManager {
        let manager = try PassManager(pipeline: pipeline, registry: registry, instrumentation: instrumentation(parsed))
        manager.output = { Console.error($0, terminator: "") }
        return manager
    }
}
