import Foundation
import Testing
import SQIR
import SQPasses

/// docs/passes.md holds one section per built-in pass; the part between the
/// `BEGIN GENERATED pass=NAME` / `END GENERATED` markers is regenerated from the pass's
/// metadata here and must match. `SQOPT_UPDATE_DOCS=1 swift test --filter DocsTests`
/// rewrites the blocks in place (sections for new passes still need adding by hand: the
/// failure message prints the block to paste).
@Suite struct DocsTests {
    @Test func passesDocMatchesTheRegistry() throws {
        let path = RepositoryPath.path("docs/passes.md")
        let current = try String(contentsOfFile: path, encoding: .utf8)
        let (regenerated, missing, unknown) = PassRegistry.builtin.regeneratingDocumentation(current)
        if ProcessInfo.processInfo.environment["SQOPT_UPDATE_DOCS"] == "1" && regenerated != current {
            try regenerated.write(toFile: path, atomically: true, encoding: .utf8)
        }
        for name in missing {
            guard let info = PassRegistry.builtin.info(named: name) else { continue }
            Issue.record("docs/passes.md has no section for '\(name)'; add:\n## \(name)\n\n\(PassRegistry.documentationBlock(for: info))")
        }
        #expect(unknown.isEmpty, "docs/passes.md documents passes that are not registered: \(unknown)")
        #expect(regenerated == current, "docs/passes.md is out of date; run SQOPT_UPDATE_DOCS=1 swift test --filter DocsTests")
    }

    /// `passes/fold-constants.swift` (or `passes/FoldConstants.swift`) for `fold-constants`.
    static func passFile(_ name: String) -> String? {
        let camel = name.split(separator: "-").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
        return ["passes/\(name).swift", "passes/\(camel).swift"]
            .first { FileManager.default.fileExists(atPath: RepositoryPath.path($0)) }
    }

    @Test func everyPassFileIsNamedAfterItsToken() throws {
        for info in PassRegistry.builtin.passes {
            #expect(DocsTests.passFile(info.name) != nil, "passes/\(info.name).swift is missing")
        }
    }

    @Test func everyPassFileOpensWithItsContract() throws {
        for info in PassRegistry.builtin.passes {
            guard let file = DocsTests.passFile(info.name) else { continue }
            let text = try String(contentsOfFile: RepositoryPath.path(file), encoding: .utf8)
            #expect(text.contains("/// `\(info.name)`"), "\(file) should open with a doc comment naming the pass")
            #expect(text.contains("/// Options:"), "\(file): the doc comment should list the options")
            #expect(text.contains("/// // before"), "\(file): the doc comment should show a before/after example")
        }
    }
}

extension DocsTests {
    /// The hand-written examples in docs/passes.md: each "Example (`PIPELINE`), before:" code
    /// block, run through the pipeline, prints as the "after:" block.
    @Test func passExamplesAreTrue() throws {
        let text = try String(contentsOfFile: RepositoryPath.path("docs/passes.md"), encoding: .utf8)
        let examples = DocsTests.examples(in: text)
        #expect(examples.count >= 5)
        for (pipeline, before, after) in examples {
            let model = try IRParser(allowElidedConstants: true).parseModel(before)
            try PassManager(pipeline: pipeline, registry: testRegistry).run(on: model)
            #expect(IRPrinter().print(model.graph) == after, "example for '\(pipeline)'")
        }
    }

    static func examples(in text: String) -> [(pipeline: String, before: String, after: String)] {
        var out: [(String, String, String)] = []
        var rest = Substring(text)
        while let marker = rest.firstRange(of: "Example (`") {
            rest = rest[marker.upperBound...]
            guard let close = rest.firstRange(of: "`)") else { break }
            let pipeline = String(rest[..<close.lowerBound])
            var blocks: [String] = []
            for _ in 0..<2 {
                guard let open = rest.firstRange(of: "```\n"), let end = rest[open.upperBound...].firstRange(of: "```\n") else { break }
                blocks.append(String(rest[open.upperBound..<end.lowerBound]))
                rest = rest[end.upperBound...]
            }
            if blocks.count == 2 { out.append((pipeline, blocks[0], blocks[1])) }
        }
        return out
    }
}
