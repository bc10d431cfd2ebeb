import Foundation
import Testing
import SQIR
import SQPasses
import ExampleCustomPass

/// The built-in passes plus the example custom passes, registered the same way.
let testRegistry = PassRegistry.builtin.registering(StripMultiplyByOne.self).registering(DivToMul.self)

/// One case of an IR test file (cases are separated by `// -----`).
///
/// A case is IR text (parsed with elided constants allowed) plus directives in comments:
/// - `CHECK...` lines are matched against the printed model after the pipeline;
/// - a graph named `dont_...` must come out exactly as it went in;
/// - `expected-error {{text}}`: the pipeline must fail with an error containing text;
/// - `expected-remark {{text}}` / `expected-warning {{text}}`: a diagnostic containing text.
struct IRTestCase: Sendable, CustomTestStringConvertible {
    let suite: String
    let pipeline: String
    let text: String

    var graphName: String {
        for line in text.split(separator: "\n") where line.hasPrefix("graph ") {
            return String(line.dropFirst(6).prefix { $0 != "(" && $0 != " " })
        }
        return "?"
    }

    var testDescription: String { "\(suite): \(graphName)" }

    static func cases(_ file: String, suite: String, pipeline: String) -> [IRTestCase] {
        FileCheck.splitCases(file).map { IRTestCase(suite: suite, pipeline: pipeline, text: $0) }
    }

    static func annotations(_ kind: String, in text: String) -> [String] {
        var out: [String] = []
        var rest = Substring(text)
        while let marker = rest.firstRange(of: "expected-\(kind) {{") {
            rest = rest[marker.upperBound...]
            guard let close = rest.firstRange(of: "}}") else { break }
            out.append(String(rest[..<close.lowerBound]))
            rest = rest[close.upperBound...]
        }
        return out
    }

    /// Parses, runs the pipeline with verify-each, and checks the directives.
    func run(registry: PassRegistry = testRegistry, context: PassContext = PassContext()) throws {
        let expectedErrors = Self.annotations("error", in: text)
        let model = try IRParser(allowElidedConstants: true).parseModel(text)
        let printer = IRPrinter()
        let before = printer.print(model)
        do {
            let manager = try PassManager(pipeline: pipeline, registry: registry)
            try manager.run(on: model, context: context)
        } catch {
            if expectedErrors.isEmpty { throw error }
            for expected in expectedErrors where !"\(error)".contains(expected) {
                Issue.record("error '\(error)' does not contain '\(expected)'")
            }
            return
        }
        if !expectedErrors.isEmpty { Issue.record("expected an error (\(expectedErrors)) but the pipeline succeeded") }
        let after = printer.print(model)
        if graphName.hasPrefix("dont_") && after != before {
            Issue.record("a dont_ case changed:\n--- before\n\(before)--- after\n\(after)")
        }
        for kind in ["remark", "warning"] {
            let diagnostics = context.diagnostics.filter { $0.severity.rawValue == kind }.map(\.description)
            for expected in Self.annotations(kind, in: text) where !diagnostics.contains(where: { $0.contains(expected) }) {
                Issue.record("no \(kind) containing '\(expected)'; got \(diagnostics)")
            }
        }
        if !FileCheck().directives(in: text).isEmpty {
            do {
                try FileCheck().match(after, checks: text)
            } catch {
                Issue.record("\(error)\n--- output\n\(after)")
            }
        }
    }
}

/// Paths of repository files, found from this source file.
enum RepositoryPath {
    static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }
}
